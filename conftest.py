"""Repository-wide test settings. The plugin itself is loaded by its pytest11 entry point."""

# pytester drives pytest in a sandbox for the plugin tests (tests/plugin).
pytest_plugins = ["pytester"]
