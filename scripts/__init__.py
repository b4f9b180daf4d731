"""Project scripts: code generation, tool installation, development certificates."""
