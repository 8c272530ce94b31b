"""Distillation: the Distiller (a thin keras.Model with a custom train_step) and its loss terms."""
