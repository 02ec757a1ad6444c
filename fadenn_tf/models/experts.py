"""Bank of 4 specialised DAEs with selective routing (paper eq. 6).

Given image x [B,S,S,3] in [-1,1] and noise class c [B] int in 0..4, row b of the output is
x[b] itself when c[b] == 0 (bit-exact pass-through) and expert_c(x)[b] otherwise.

Routing is inside the graph with no Python control flow on tensor values: all 4 experts run
on the whole batch and a chain of `where` selects (SelectByClass) picks each row. A select
copies values bit-exactly, which a float mask multiply-add (x*m0 + sum_k m_k*expert_k(x))
would not guarantee (0 * inf = NaN, and -0.0/denormal handling). The cost is 4x the compute
of one DAE per image whatever the class mix. The alternative, gathering the rows of each class
and scattering the results back (tf.dynamic_partition / dynamic_stitch), runs each row
through one expert only but needs dynamic shapes and ops that are not TFLite builtins.
"""
import keras

from fadenn_tf.config import IIDConfig
from fadenn_tf.models.dae import build_dae
from fadenn_tf.models.layers import SelectByClass

NUM_EXPERTS = 4


def build_expert_bank(cfg: IIDConfig, experts=None, name="experts"):
    """Expert bank model: [image [B,S,S,3] in [-1,1], noise_class [B] int32] -> [B,S,S,3].

    `experts`: optional list of 4 DAE models (expert k at index k-1) to reuse; fresh DAEs
    named expert_1..expert_4 otherwise. The experts are nested layers of the bank.
    """
    if experts is None:
        experts = [build_dae(cfg, name=f"expert_{k}") for k in range(1, NUM_EXPERTS + 1)]
    if len(experts) != NUM_EXPERTS:
        raise ValueError(f"expected {NUM_EXPERTS} experts (noise types 1..4), got {len(experts)}")
    s = cfg.input_size
    image = keras.Input((s, s, 3), name="image")
    noise_class = keras.Input((), dtype="int32", name="noise_class")
    outs = [expert(image) for expert in experts]
    out = SelectByClass(name="route")([noise_class, image] + outs)
    return keras.Model([image, noise_class], out, name=name)
