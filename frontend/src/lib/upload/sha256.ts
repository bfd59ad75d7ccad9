/**
 * Incremental SHA-256 for uploads. SubtleCrypto only digests a whole buffer at once, which would
 * mean holding a multi-gigabyte file in memory; hash-wasm hashes slice by slice in WebAssembly.
 */
import { createSHA256 } from 'hash-wasm'

import type { HasherFactory } from './task'

export const sha256Hasher: HasherFactory = async () => {
  const hasher = await createSHA256()
  hasher.init()
  return {
    update: (bytes: Uint8Array) => {
      hasher.update(bytes)
    },
    digest: () => hasher.digest('hex'),
  }
}
