"""The app's views, one module each, composed by app.py: validate (what every request shares), write,
learned (how each model learned) and score (how Molière is your text?)."""
