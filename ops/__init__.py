"""The app's side of the stores: composing them from settings (wiring) and the operator's command line (cli).

`stores/` is a library other Bolt apps can adopt and never imports the app's settings; this package does.
"""
