/**
 * Names people give things (jobs, datasets, models, templates, prompts, conversations): the server's
 * one bound (`Name` in api/schemas/common.py; tests/lib/format.spec.ts checks the OpenAPI document
 * agrees), and how a long one is shortened where a whole name does not fit (a toast).
 */
export const NAME_MAX_LENGTH = 100

/** At most `max` characters, the cut marked with "…" (a toast stays one line; tables use CSS). */
export function shortName(name: string, max = 48): string {
  const chars = [...name]
  return chars.length <= max
    ? name
    : `${chars
        .slice(0, max - 1)
        .join('')
        .trimEnd()}…`
}
