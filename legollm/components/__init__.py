"""The Lego pieces a model is assembled from; each file is one idea.

- ``normalization``: LayerNorm and RMSNorm.
- ``position``: learned positions and RoPE (with Llama 3.1's frequency scaling).
- ``attention``: causal self-attention (MHA/GQA/MQA, SDPA + a manual path); owns its cache, mask.
- ``kv_cache``: the pre-allocated key/value cache, full or a ring for sliding windows.
- ``feedforward``: the GELU MLP and SwiGLU.
- ``moe``: a sparse top-k mixture of experts and its load-balancing loss.
- ``block``: the pre-norm transformer block.
- ``linear``: nn.Linear with threaded few-row products on CPU (decoding).
- ``quantized``: Int8Linear (int8 weights, one scale per output row) and quantize(model).
"""
