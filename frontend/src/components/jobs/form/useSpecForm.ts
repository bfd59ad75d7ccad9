/**
 * The state behind the new-job form: the values of the schema's fields, the spec they build, and
 * the messages under each field (the server's first, then the client's; "required" only after a
 * submit). The pure rules live in specForm.ts; this binds them to Vue state for JobForm.vue.
 */
import { computed, reactive, ref, watch, type Ref } from 'vue'
import { useI18n } from 'vue-i18n'

import type { JobSpec, SpecSchema } from '@/api/jobs'

import {
  OWN_WIDGET_KEYS,
  applyMethod,
  buildSpec,
  isRelevant,
  methodOf,
  schemaFields,
  serverFieldErrors,
  touchesAdvanced,
  valuesFromSpec,
  withoutHidden,
  type FieldError,
  type FormValues,
  type Method,
} from './specForm'

const OWN = new Set<string>(OWN_WIDGET_KEYS)

export function useSpecForm(schema: Ref<SpecSchema | null>) {
  const { t, te } = useI18n()

  const fields = computed(() => schemaFields(schema.value))
  const name = ref('')
  const values = reactive<FormValues>({})
  /** Spec keys the form does not show (kept as they came, e.g. from a template). */
  const base = ref<JobSpec>({})
  const submitted = ref(false)
  const serverErrors = reactive<Record<string, string>>({})

  // A CPU run computes in fp32 (bf16/fp16 there is slow or unsupported; the server turns them into
  // fp32 too), so choosing the CPU, or a half precision with the CPU chosen, leaves fp32 in the form.
  watch(
    () => [values.devices, values.precision] as const,
    ([devices, precision]) => {
      if (devices === 'cpu' && (precision === 'bf16' || precision === 'fp16')) values.precision = 'fp32'
    },
  )

  const built = computed(() => buildSpec(values, fields.value, base.value))
  const spec = computed(() => built.value.spec)
  const method = computed<Method>(() => methodOf(spec.value))

  const commonKeys = computed(() =>
    (schema.value?.groups.common ?? []).filter((k) => !OWN.has(k) && fields.value[k] && isRelevant(k, spec.value)),
  )
  const advancedKeys = computed(() =>
    (schema.value?.groups.advanced ?? []).filter((k) => fields.value[k] && isRelevant(k, spec.value)),
  )
  /** The order of keys in an exported YAML: the form's own order. */
  const keyOrder = computed(() => [
    ...OWN_WIDGET_KEYS,
    ...(schema.value?.groups.common ?? []),
    ...(schema.value?.groups.advanced ?? []),
  ])

  function defaultOf(key: string): string {
    const d = fields.value[key]?.default
    return d === undefined || d === null ? '' : t('jobs.form.defaultIs', { value: String(d) })
  }

  function describe(key: string): string {
    return fields.value[key]?.description ?? ''
  }

  function clientMessage(error: FieldError | undefined): string | undefined {
    if (!error) return undefined
    return te(error.key) ? t(error.key, error.params ?? {}) : error.key
  }

  /** The message under a field: the server's first, then the client's (required only after submit). */
  function errorOf(key: string): string | undefined {
    if (serverErrors[key]) return serverErrors[key]
    const error = built.value.errors[key]
    if (!error) return undefined
    if (error.key === 'jobs.form.errors.required' && !submitted.value) return undefined
    return clientMessage(error)
  }
  const nameError = computed(() => {
    if (serverErrors.name) return serverErrors.name
    return submitted.value && !name.value.trim() ? t('jobs.form.errors.required') : undefined
  })

  // A server message stays until its field changes.
  watch(
    () => ({ ...values }),
    (now, before) => {
      for (const key of Object.keys(serverErrors)) if (now[key] !== before?.[key]) delete serverErrors[key]
    },
  )

  function setMethod(next: Method): void {
    const updated = applyMethod(spec.value, next)
    values.finetuning_type = String(updated.finetuning_type)
    if (updated.quantization_bit === undefined) delete values.quantization_bit
    else values.quantization_bit = String(updated.quantization_bit)
  }

  /** Replace the form's content with a spec (a prefill, an imported YAML). */
  function fill(from: JobSpec): void {
    const clean = withoutHidden(from, schema.value)
    for (const key of Object.keys(values)) delete values[key]
    Object.assign(values, valuesFromSpec(clean, fields.value))
    base.value = Object.fromEntries(Object.entries(clean).filter(([key]) => !(key in fields.value)))
    if (typeof values.dataset === 'string') values.dataset = Number(values.dataset) || undefined
    if (typeof values.dataset_version === 'string') values.dataset_version = Number(values.dataset_version) || undefined
  }

  /** A submit: show every message; the problems (field keys) that block it, none when it may go. */
  function check(): string[] {
    submitted.value = true
    for (const key of Object.keys(serverErrors)) delete serverErrors[key]
    const problems = Object.keys(built.value.errors)
    return !name.value.trim() ? ['name', ...problems] : problems
  }

  /** Put a failed call's field errors under their fields; returns what fits no field. */
  function applyServerErrors(err: unknown): string | null {
    const split = serverFieldErrors(err, Object.keys(fields.value))
    Object.assign(serverErrors, split.fields)
    return split.general
  }

  /** Whether any of these keys sits under "Advanced" (which the form then opens). */
  const inAdvanced = (keys: Iterable<string>) => touchesAdvanced(keys, schema.value)

  return {
    fields,
    name,
    values,
    spec,
    method,
    commonKeys,
    advancedKeys,
    keyOrder,
    defaultOf,
    describe,
    errorOf,
    nameError,
    setMethod,
    fill,
    check,
    applyServerErrors,
    inAdvanced,
    serverErrors,
  }
}
