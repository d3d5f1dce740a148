"""Many runs of one config: grid expansion, run naming, skip finished / resume broken, local executor."""
