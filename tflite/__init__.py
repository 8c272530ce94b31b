"""tfpose's TFLite side. ``runtime``, ``metadata`` and ``validate`` import no TensorFlow: they run on a phone
or a Raspberry Pi with numpy, OpenCV and ai-edge-litert (or tflite-runtime). ``convert`` needs TensorFlow."""
