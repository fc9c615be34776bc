"""Dev-only tooling (CLI, local stack, platform sandbox, local AWS): never packaged into Lambda."""
