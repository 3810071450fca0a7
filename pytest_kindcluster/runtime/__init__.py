"""Node runtimes: the only layer that talks to a container engine."""
