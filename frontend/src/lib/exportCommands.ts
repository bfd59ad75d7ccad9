/**
 * The copy-paste commands that run an exported model where it is deployed: llama.cpp for a GGUF,
 * Ollama for a bundle, ONNX Runtime GenAI for an ONNX folder, vLLM for merged weights. Plain
 * functions of the export's format and file names, so the UI and its tests build the same text.
 *
 * Every name that comes from the registry goes through `shellQuote`: a model named `it's` or a
 * prompt with `$(…)` must paste as data, never as shell syntax.
 */

/** The export formats (the engine's `export.format`). */
export type ExportFormatName = 'gguf' | 'gguf_lora' | 'ollama' | 'onnx' | 'merged'

/** One command line the user copies, with what it is for (a message key under `exports.commands`). */
export interface ExportCommand {
  /** `llama_cli`, `llama_server`, `llama_lora`, `ollama_create`, `ollama_run`, `onnx`, `vllm`. */
  id: string
  text: string
}

export interface CommandInput {
  format: ExportFormatName
  /** The files of the export, as the server lists them. */
  files: readonly string[]
  /** The registry's `<model name>@v<n>` of the exported version (names the Ollama model). */
  modelName: string
  /** A prompt to try the model with. */
  prompt: string
}

/** The default prompt of the commands (the one the verification also uses is the server's). */
export const DEFAULT_PROMPT = 'Hello! Who are you?'

/** Quote one word for a POSIX shell: left alone when it is plainly safe, else single-quoted. */
export function shellQuote(word: string): string {
  if (word !== '' && /^[A-Za-z0-9_@%+=:,./-]+$/.test(word)) return word
  return `'${word.replace(/'/g, `'\\''`)}'`
}

/**
 * An Ollama model name from a registry name: lower case letters, digits, `.`, `_` and `-` (what
 * `ollama create` accepts), the version kept as a `-vN` suffix so two exports of one model differ.
 */
export function ollamaName(modelName: string): string {
  const cleaned = modelName
    .toLowerCase()
    .replace(/@v(\d+)$/, '-v$1')
    .replace(/[^a-z0-9._-]+/g, '-')
    .replace(/-{2,}/g, '-')
    .replace(/^[-._]+|[-._]+$/g, '')
  return cleaned || 'model'
}

const isGguf = (name: string) => name.toLowerCase().endsWith('.gguf')

/** The file a single-file export is about: its .gguf, else the first file. */
export function mainFile(files: readonly string[]): string | null {
  return files.find(isGguf) ?? files[0] ?? null
}

/**
 * The commands for one export, in the order a user runs them. Paths are relative: the user runs
 * them in the folder the files were downloaded to (for ONNX and merged weights: the folder that
 * holds all of them, named after the model).
 */
export function exportCommands(input: CommandInput): ExportCommand[] {
  const prompt = shellQuote(input.prompt || DEFAULT_PROMPT)
  const gguf = mainFile(input.files)
  const folder = shellQuote(`./${ollamaName(input.modelName)}`)
  switch (input.format) {
    case 'gguf': {
      if (!gguf) return []
      const file = shellQuote(gguf)
      return [
        { id: 'llama_cli', text: `llama-cli -m ${file} -p ${prompt} -n 128` },
        { id: 'llama_server', text: `llama-server -m ${file} --port 8080` },
      ]
    }
    case 'gguf_lora': {
      if (!gguf) return []
      return [{ id: 'llama_lora', text: `llama-cli -m base.gguf --lora ${shellQuote(gguf)} -p ${prompt} -n 128` }]
    }
    case 'ollama': {
      const name = shellQuote(ollamaName(input.modelName))
      return [
        { id: 'ollama_create', text: `ollama create ${name} -f Modelfile` },
        { id: 'ollama_run', text: `ollama run ${name} ${prompt}` },
      ]
    }
    case 'onnx': {
      // onnxruntime-genai reads the folder the model builder wrote (genai_config.json inside).
      const script = [
        'import onnxruntime_genai as og',
        `m = og.Model(${JSON.stringify(`./${ollamaName(input.modelName)}`)})`,
        'tok = og.Tokenizer(m)',
        'p = og.GeneratorParams(m)',
        'p.set_search_options(max_length=128)',
        'g = og.Generator(m, p)',
        `g.append_tokens(tok.encode(${JSON.stringify(input.prompt || DEFAULT_PROMPT)}))`,
        'out = []',
        'while not g.is_done():',
        '    g.generate_next_token()',
        '    out.append(g.get_next_tokens()[0])',
        'print(tok.decode(out))',
      ].join('\n')
      return [{ id: 'onnx', text: `python - <<'EOF'\n${script}\nEOF` }]
    }
    case 'merged':
      return [{ id: 'vllm', text: `vllm serve ${folder}` }]
  }
}
