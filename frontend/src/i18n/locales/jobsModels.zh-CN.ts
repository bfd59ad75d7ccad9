// 将任务与模型联系起来的文案（模型由哪个任务训练、任务产出了哪个模型）、任务所有者，以及内置预设的说明。
import type jobsModelsEn from './jobsModels.en'

const jobsModels: typeof jobsModelsEn = {
  ownedBy: '所有者 {name}',
  produced: {
    title: '产出模型',
    version: '{name}，版本 {n}',
    open: '打开模型',
    chat: '与它对话',
  },
  fromJob: '来自任务 #{id} {name}',
  fromJobShort: '来自任务 #{id}',
  generatedDescription: '由任务 #{id}（{name}）微调得到',
  preset: {
    lora: 'LoRA，在{target}上使用秩 {rank}，{precision}；采用 LLaMA-Factory 示例超参数。',
    qlora: 'QLoRA：基础模型以 4 位 {type} 量化（CUDA + bitsandbytes），在{target}上使用 LoRA 秩 {rank}。',
    full: '全参数微调，{precision}；需要大显存 GPU。',
    allLinear: '所有线性层',
  },
  nameLimit: '最多 {n} 个字符',
}

export default jobsModels
