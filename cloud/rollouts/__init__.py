"""Model rollouts: serving the signed release repository (and, next, canary waves and gates)."""
