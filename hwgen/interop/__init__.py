"""Models from other tools: QONNX files (Brevitas ``export_qonnx``, FINN) in, lowered into hwgen's float stages.

``qonnx_model``  load + qonnx cleanup + shape inference, the pixel mapping
``lower``        QONNX graph -> float stages -> the same folding passes as a checkpoint
``reference``    qonnx's executor on uint8 images, compared with the golden model
``command``      ``hwgen import``
"""
