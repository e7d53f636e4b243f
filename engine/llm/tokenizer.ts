/**
 * HF tokenizer.json loading (@huggingface/tokenizers) and chat formatting. The chat format is chosen
 * from the special tokens the tokenizer has: ChatML (`<|im_start|>`: Qwen, the tiny model), Llama 3
 * (`<|start_header_id|>`), else plain "role: content" lines. Jinja chat templates are not executed.
 */
import { Tokenizer } from '@huggingface/tokenizers';
import { HnError } from '../core/errors.js';

export interface ChatMessage {
  role: 'system' | 'user' | 'assistant' | string;
  content: string;
}

export type ChatFormat = 'chatml' | 'llama3' | 'plain';

export class LlmTokenizer {
  readonly format: ChatFormat;
  readonly eosIds: number[];
  private readonly tk: Tokenizer;

  constructor(tokenizerJson: object, tokenizerConfig: object = {}, extraEos: number[] = []) {
    try {
      this.tk = new Tokenizer(tokenizerJson, tokenizerConfig);
    } catch (e) {
      throw new HnError('bad_request', `tokenizer.json could not be loaded: ${(e as Error).message}`);
    }
    const has = (t: string): boolean => this.tk.token_to_id(t) !== undefined;
    this.format = has('<|im_start|>') ? 'chatml' : has('<|start_header_id|>') ? 'llama3' : 'plain';
    const eos = new Set<number>(extraEos);
    const cfgEos = (tokenizerConfig as { eos_token?: unknown }).eos_token;
    const eosName =
      typeof cfgEos === 'string' ? cfgEos : (cfgEos as { content?: string } | undefined)?.content;
    for (const t of [eosName, '<|im_end|>', '<|eot_id|>', '<|end_of_text|>', '<|endoftext|>', '</s>']) {
      if (!t) continue;
      const id = this.tk.token_to_id(t);
      if (id !== undefined) eos.add(id);
    }
    this.eosIds = [...eos].sort((a, b) => a - b);
  }

  encode(text: string, addSpecialTokens = false): number[] {
    return this.tk.encode(text, { add_special_tokens: addSpecialTokens }).ids;
  }

  decode(ids: number[], skipSpecialTokens = true): string {
    if (ids.length === 0) return '';
    return this.tk.decode(ids, {
      skip_special_tokens: skipSpecialTokens,
      clean_up_tokenization_spaces: false,
    });
  }

  tokenId(token: string): number | undefined {
    return this.tk.token_to_id(token);
  }

  /** Prompt text for a conversation, ending where the assistant's reply starts. */
  formatChat(messages: ChatMessage[]): string {
    switch (this.format) {
      case 'chatml':
        return (
          messages.map((m) => `<|im_start|>${m.role}\n${m.content}<|im_end|>\n`).join('') +
          '<|im_start|>assistant\n'
        );
      case 'llama3':
        return (
          '<|begin_of_text|>' +
          messages
            .map((m) => `<|start_header_id|>${m.role}<|end_header_id|>\n\n${m.content}<|eot_id|>`)
            .join('') +
          '<|start_header_id|>assistant<|end_header_id|>\n\n'
        );
      default:
        return messages.map((m) => `${m.role}: ${m.content}\n`).join('') + 'assistant: ';
    }
  }
}
