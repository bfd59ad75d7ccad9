"""HTTP layer: routes parse and authorise, call `loraforge.services`, map domain errors to HTTP."""
