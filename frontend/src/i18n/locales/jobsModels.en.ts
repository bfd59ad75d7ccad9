// English messages that tie jobs and models together (which job made a model, which model a job
// made), job owners, and the shipped presets' descriptions (written here from their spec, so they
// follow the UI language). jobsModels.zh-CN.ts must have exactly the same keys (its type enforces it).
const jobsModels = {
  ownedBy: 'by {name}',
  produced: {
    title: 'Produced model',
    version: '{name}, version {n}',
    open: 'Open model',
    chat: 'Chat with it',
  },
  fromJob: 'from job #{id} {name}',
  fromJobShort: 'from job #{id}',
  /** What older servers wrote as a fine-tuned model's description (shown in the UI language). */
  generatedDescription: 'Fine-tuned by job #{id} ({name})',
  preset: {
    lora: 'LoRA, rank {rank} on {target}, {precision}; LLaMA-Factory’s example hyperparameters.',
    qlora: 'QLoRA: the base model in 4-bit {type} (CUDA + bitsandbytes), LoRA rank {rank} on {target}.',
    full: 'Full fine-tuning of every weight, {precision}; needs a large GPU.',
    allLinear: 'every linear layer',
  },
  nameLimit: 'At most {n} characters',
}

export default jobsModels
