"""NumPy references and inputs shared by the ``keras_dccrn.losses`` test modules."""

import keras
import numpy as np

EPS = 1e-8


def to_np(x):
    return keras.ops.convert_to_numpy(x)


def np_time_energy(x):
    return (x.astype(np.float64) ** 2).sum(axis=(2, 3))


def np_channel_energy(x, complex_channels=True):
    e = (x.astype(np.float64) ** 2).sum(axis=(1, 2))
    if complex_channels:
        half = e.shape[1] // 2
        e = e[:, :half] + e[:, half:]
    return e


def np_resample(vec, positions):
    """np.interp clamps outside [0, N - 1], like the implementation."""
    grid = np.arange(vec.shape[1])
    return np.stack([np.interp(positions, grid, row) for row in vec])


def np_centre_positions(n_student, student_frame, teacher_frame):
    """Teacher frame index (fractional) at the centre time of each student frame."""
    (win_s, hop_s), (win_t, hop_t) = student_frame, teacher_frame
    centres_s = (np.arange(n_student) + 1) * hop_s - win_s / 2  # samples
    # teacher frame j is centred at (j + 1) * hop_t - win_t / 2: invert for j
    return (centres_s + win_t / 2) / hop_t - 1


def np_half_pixel(n_out, n_in):
    return (np.arange(n_out) + 0.5) * n_in / n_out - 0.5


def np_at(e_s, e_t):
    def unit(a):
        a = a / a.max(-1, keepdims=True)
        return a / np.linalg.norm(a, axis=-1, keepdims=True)

    return ((unit(e_s) - unit(e_t)) ** 2).sum(-1)


def np_log_dist(e, temperature, floor=1e-8):
    z = np.log(e / e.max(-1, keepdims=True) + floor) / temperature
    z = z - z.max(-1, keepdims=True)
    return z - np.log(np.exp(z).sum(-1, keepdims=True))


def np_kl(e_s, e_t, temperature):
    lt, ls = np_log_dist(e_t, temperature), np_log_dist(e_s, temperature)
    return temperature**2 * (np.exp(lt) * (lt - ls)).sum(-1)


def np_atkl_terms(teacher, student, temperature, student_frame=None, teacher_frame=None):
    out = dict(at_time=0.0, at_channel=0.0, kl_time=0.0, kl_channel=0.0)
    for t, s in zip(teacher, student, strict=True):
        et, es = np_time_energy(t), np_time_energy(s)
        if student_frame is not None:
            pos = np_centre_positions(es.shape[1], student_frame, teacher_frame)
        else:
            pos = np_half_pixel(es.shape[1], et.shape[1])
        et = np_resample(et, pos)
        out["at_time"] = out["at_time"] + np_at(es, et)
        out["kl_time"] = out["kl_time"] + np_kl(es, et, temperature)
        ct, cs = np_channel_energy(t), np_channel_energy(s)
        ct = np_resample(ct, np_half_pixel(cs.shape[1], ct.shape[1]))
        out["at_channel"] = out["at_channel"] + np_at(cs, ct)
        out["kl_channel"] = out["kl_channel"] + np_kl(cs, ct, temperature)
    return out


def np_stft(x, win=400, hop=160, nfft=512):
    left = win - hop
    length = x.shape[-1]
    frames = int(np.ceil((length + 2 * left - win) / hop)) + 1
    right = (frames - 1) * hop + win - length - left
    padded = np.pad(x, [(0, 0), (left, right)])
    window = 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(win) / win)
    idx = np.arange(frames)[:, None] * hop + np.arange(win)[None, :]
    return np.fft.rfft(padded[:, idx] * window, n=nfft)  # [B, T, bins] complex


def feature_pair_lists(rng, batch=2):
    """Teacher maps (7 frames, 6 complex channels) and student maps (11 frames, 4)."""
    teacher = [rng.standard_normal((batch, 7, f, 12)).astype("float32") for f in (16, 8)]
    student = [rng.standard_normal((batch, 11, f, 8)).astype("float32") for f in (8, 4)]
    return teacher, student
