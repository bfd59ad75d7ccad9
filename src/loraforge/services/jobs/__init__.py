"""Training jobs: lifecycle, the one state-transition function, specs, the queue scheduler, run files, live
streams, metrics, presets, templates, retention and housekeeping."""
