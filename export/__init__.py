"""export: every deployable format of the teacher and student, each checked
against its Keras model, all recorded in manifest.json."""
