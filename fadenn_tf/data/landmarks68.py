"""Facts about the 68-point (ibug / 300-W) markup used everywhere in the project."""
import numpy as np

NUM_POINTS = 68

# Index i of a horizontally flipped face takes point FLIP_PERM[i] of the original (0-based).
FLIP_PERM = np.array([
    16, 15, 14, 13, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0,   # jaw 0-16
    26, 25, 24, 23, 22, 21, 20, 19, 18, 17,                     # brows 17-26
    27, 28, 29, 30,                                             # nose bridge 27-30
    35, 34, 33, 32, 31,                                         # nostrils 31-35
    45, 44, 43, 42, 47, 46,                                     # right eye 36-41 <- left eye
    39, 38, 37, 36, 41, 40,                                     # left eye 42-47 <- right eye
    54, 53, 52, 51, 50, 49, 48,                                 # outer lips 48-54
    59, 58, 57, 56, 55,                                         # outer lips 55-59
    64, 63, 62, 61, 60,                                         # inner lips 60-64
    67, 66, 65,                                                 # inner lips 65-67
], dtype=np.int32)

# Outer eye corners, the inter-ocular normaliser of the 300-W papers.
OUTER_EYE_CORNERS = (36, 45)

# Named groups (0-based, end exclusive) for drawing and for the synthetic renderer.
GROUPS = {
    "jaw": (0, 17), "right_brow": (17, 22), "left_brow": (22, 27), "nose_bridge": (27, 31),
    "nostrils": (31, 36), "right_eye": (36, 42), "left_eye": (42, 48),
    "outer_lips": (48, 60), "inner_lips": (60, 68),
}
CLOSED_GROUPS = ("right_eye", "left_eye", "outer_lips", "inner_lips")

assert sorted(FLIP_PERM.tolist()) == list(range(NUM_POINTS))
assert (FLIP_PERM[FLIP_PERM] == np.arange(NUM_POINTS)).all()


def flip_landmarks(points, width):
    """Landmarks [..., 68, 2] (0-based pixel-centre x, y) of the horizontally mirrored image
    of width `width`: x -> width - 1 - x and indices through FLIP_PERM. Its own inverse, so
    it also maps fits on a mirrored image back. The NumPy twin of data.augment.flip_points."""
    out = np.array(points, np.float64)
    out[..., 0] = width - 1.0 - out[..., 0]
    return out[..., FLIP_PERM, :]
