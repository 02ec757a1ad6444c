"""The commands: one module per command, each parsing its arguments, calling into the library
and returning an exit status. `python -m fadenn_tf.<command>`, `python -m fadenn_tf <command>`
(fadenn_tf.__main__, which lists them) and the `fadenn-<command>` console scripts run
`fadenn_tf.cli.<command>.main`."""
