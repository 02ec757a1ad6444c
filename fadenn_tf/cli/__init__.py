"""The commands: one module per command, each parsing its arguments, calling into the library
and returning an exit status. `python -m fadenn_tf.<command>` and the `fadenn-<command>`
console scripts run `fadenn_tf.cli.<command>.main`."""
