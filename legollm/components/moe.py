"""Sparse mixture of experts: many SwiGLU feed-forwards, each token uses a few.

A router (one linear layer) scores every expert for every token; the token goes
through its top ``k`` experts only, and their outputs are mixed by the router's
probabilities renormalised over the chosen k (Mixtral: 8 experts, k = 2, so a
token pays for 2 feed-forwards while the layer holds 8 times the parameters).
``normalize=False`` mixes by the raw probabilities instead (Qwen 3's
``norm_topk_prob: false``), so the k weights sum to less than 1.

The dispatch groups tokens by expert rather than running every expert on every
token: the (token, expert) pairs are sorted by expert, each expert multiplies
only the rows routed to it, and ``index_add_`` sums each token's k weighted
outputs back in place. An expert no token chose costs nothing (decoding one
token runs exactly k experts).

Training a mixture from scratch needs the router to spread tokens over the
experts: ``load_balancing_loss`` is the Switch Transformer auxiliary loss
(Mixtral adds ``router_aux_loss_coef`` times it to the language-model loss); each
layer keeps its last ``router_logits`` for it.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from legollm.components.feedforward import SwiGLU
from legollm.components.linear import Linear


class MoE(nn.Module):
    def __init__(
        self, dim: int, hidden: int, n_experts: int, top_k: int, bias: bool = False,
        normalize: bool = True,
    ):  # fmt: skip
        super().__init__()
        self.n_experts, self.top_k, self.normalize = n_experts, top_k, normalize
        self.router = Linear(dim, n_experts, bias=False)
        self.experts = nn.ModuleList(SwiGLU(dim, hidden, bias) for _ in range(n_experts))
        self.router_logits: torch.Tensor | None = None  # (tokens, n_experts) of the last call

    def route(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Each row's top-k experts (N, k) and their weights (N, k), summing to 1 per row
        when ``normalize``."""
        logits = self.router(x)
        self.router_logits = logits
        probs = logits.float().softmax(dim=-1)
        weights, experts = probs.topk(self.top_k, dim=-1)
        if self.normalize:
            weights = weights / weights.sum(dim=-1, keepdim=True)
        return experts, weights.to(x.dtype)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shape = x.shape
        x = x.reshape(-1, shape[-1])  # (N, C): routing is per token
        experts, weights = self.route(x)
        # one (token, expert) pair per choice, sorted so each expert's rows are contiguous
        flat = experts.flatten()  # (N*k,)
        order = flat.argsort(stable=True)
        tokens = order // self.top_k  # row of x each sorted pair came from
        counts = torch.bincount(flat, minlength=self.n_experts).tolist()
        out = torch.zeros_like(x)
        start = 0
        for e, n in enumerate(counts):
            if n == 0:
                continue
            pairs = order[start : start + n]
            rows = tokens[start : start + n]
            y = self.experts[e](x[rows]) * weights.flatten()[pairs, None]
            out.index_add_(0, rows, y)
            start += n
        return out.view(shape)


def load_balancing_loss(router_logits: list[torch.Tensor], top_k: int) -> torch.Tensor:
    """Switch Transformer's auxiliary loss over the layers' router logits (each (N, E)).

    n_experts * sum_e f_e * P_e, where f_e is the share of (token, choice) pairs
    routed to expert e and P_e the mean router probability of e, both over every
    token of every layer. It is smallest (top_k) when routing is uniform.
    """
    n_experts = router_logits[0].shape[-1]
    probs = torch.cat([r.float() for r in router_logits]).softmax(dim=-1)  # (layers*N, E)
    chosen = probs.topk(top_k, dim=-1).indices
    f = F.one_hot(chosen, n_experts).float().sum(dim=1).mean(dim=0)  # (E,), sums to top_k
    return n_experts * (f * probs.mean(dim=0)).sum()
