"""Evaluation: scoring model answers on a test set, and the run that produces the answers.

Metrics, each a small pure function of predictions and references (nothing there loads a model):
`overlap` holds the text-overlap scores (LLaMA-Factory's BLEU-4/ROUGE, sacreBLEU's corpus BLEU and
chrF), `matching` the answer checks (exact match, contains, regex, valid JSON), `choice` the
multiple-choice prompt and accuracy, `judge` the parsing of an LLM judge's verdicts, and
`perplexity` the aggregation of token log-likelihoods.

The run: `spec` (the evaluation spec, torch-free), `testset` and `encoding` (the test set read and
rendered as training reads and renders it), `loading`, `batching`, `generate` and `likelihood`
(the model passes), `scoring`, `results` (resumable per-sample files), `progress` (events),
`passes` (local and provider generation, multiple choice, rescoring), `runner` (one evaluation end
to end) and `cli` (`loraforge eval`).

Platform jobs (`"stage": "evaluation"` in RUN_DIR/spec.json): `jobspec` (the job's blocks), `job`
(dispatch, seeding, endings), `provider` (OpenAI-compatible endpoints), `judging` (the judge's
backend and single-mode pass), `pairwise` (the pairwise judge job) and `errors` (shared endings).
"""
