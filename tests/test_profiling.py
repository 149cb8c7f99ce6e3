import keras
import numpy as np

from keras_dccrn import build_model
from keras_dccrn.profiling import count_macs


class Seq(keras.Model):
    def __init__(self):
        super().__init__()
        self.lstm = keras.layers.LSTM(5, return_sequences=True)
        self.dense = keras.layers.Dense(3)

    def call(self, x):
        # [B, S] -> [B, S / 4, 4]
        seq = keras.ops.reshape(x, (keras.ops.shape(x)[0], -1, 4))
        return self.dense(self.lstm(seq))


def test_counts_dense_and_lstm_loop_exactly():
    model = Seq()
    model(np.zeros((1, 40), "float32"))
    steps = 40 // 4
    lstm = steps * 4 * 5 * (4 + 5)  # per step: [x, h] @ [4 gates x 5 units]
    dense = steps * 5 * 3
    assert count_macs(model, 40) == lstm + dense


def test_student_is_about_half_of_dccrn_cl():
    student = count_macs(build_model("distil_dccrn"), 16000)
    teacher = count_macs(build_model("dccrn_cl"), 16000)
    assert 0.4 < student / teacher < 0.6
