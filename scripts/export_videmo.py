"""Exports VidEmo-3B (KlingTeam/VidEmo-3B, a Qwen2.5-VL-3B fine-tune) to the
three ONNX graphs edgemo's Go runner (engine/videmo) loads, with the
onnxruntime-genai `qwen2_5_vl` contract (shared/design/videmo.md), and writes
their manifest:

  vision.onnx     pixel_values f32 [N, 1176], image_grid_thw i64 [1, 3]
                  -> image_features [N/4, 2048]                        (fp16 weights, f32 IO)
  embedding.onnx  input_ids i64 [B, S], image_features f32 [M, 2048]
                  -> inputs_embeds [B, S, 2048]  (features scattered in order to the
                     <|video_pad|> rows; the public graphs only do <|image_pad|>)
  decoder.onnx    inputs_embeds, attention_mask i64 [B, T], position_ids i64 [3, B, S],
                  past_key_values.{i}.key/value [B, 2, P, 128]
                  -> logits [B, S, 151936], present.{i}.key/value   (int4 MatMulNBits, block 32)

Runs where torch, transformers (>= 4.49, with Qwen2_5_VLForConditionalGeneration),
onnx and onnxruntime are installed, with the weights (about 8 GB of RAM for
fp32 tracing; a GPU is not needed):

    pip install torch transformers onnx onnxruntime huggingface_hub
    python3 scripts/export_videmo.py --model KlingTeam/VidEmo-3B --out models/videmo-3b
    # smoke test on any torch machine, no weights: a tiny random Qwen2.5-VL
    python3 scripts/export_videmo.py --tiny-random --out /tmp/videmo-tiny-hf --verify

then point edgemo at <out>/../videmo-3b.manifest.json (written next to --out).

The vision encoder's forward (rotary positions, window index, cu_seqlens)
is Python over grid_thw, so tracing fixes the grid: the graph is exported
for --grid (default 8 22 22: 16 frames of a square face crop at VidEmo's
100352-pixel budget, 308x308) and the manifest lists it in vision_grids;
the runner refuses a video of another grid. Export once per grid you need.
--verify runs the exported graphs with onnxruntime against torch on random
inputs (max |logit diff| printed; int4 quantisation is skipped with
--no-quant to check the export itself).
"""

import argparse
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))


def load(a):
    import torch
    from transformers import AutoTokenizer, Qwen2_5_VLConfig, Qwen2_5_VLForConditionalGeneration

    if a.tiny_random:
        cfg = Qwen2_5_VLConfig(
            vocab_size=151936, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
            num_attention_heads=4, num_key_value_heads=2, rope_theta=1000000.0, max_position_embeddings=4096,
            rope_scaling={"type": "mrope", "mrope_section": [2, 3, 3]}, tie_word_embeddings=True,
            vision_start_token_id=151652, vision_end_token_id=151653, video_token_id=151656, image_token_id=151655,
            vision_config={"depth": 2, "hidden_size": 32, "num_heads": 2, "intermediate_size": 64, "out_hidden_size": 64,
                           "fullatt_block_indexes": [1], "window_size": 112, "patch_size": 14, "temporal_patch_size": 2,
                           "spatial_merge_size": 2, "tokens_per_second": 2, "in_channels": 3},
        )
        torch.manual_seed(0)
        model = Qwen2_5_VLForConditionalGeneration(cfg)
        tok = AutoTokenizer.from_pretrained(a.tokenizer or "Qwen/Qwen2.5-VL-3B-Instruct")
    else:
        model = Qwen2_5_VLForConditionalGeneration.from_pretrained(a.model, torch_dtype=torch.float32, attn_implementation="eager")
        tok = AutoTokenizer.from_pretrained(a.tokenizer or a.model)
    model.eval()
    return model, tok


def parts(model):
    """(visual, language model, lm_head, embed_tokens) across transformers
    versions (4.49-4.51: model.visual / model.model; >= 4.52: model.model.visual /
    model.model.language_model)."""
    inner = model.model
    visual = getattr(model, "visual", None) or getattr(inner, "visual")
    lm = getattr(inner, "language_model", inner)
    return visual, lm, model.lm_head, lm.embed_tokens


def text_config(model):
    c = model.config
    return getattr(c, "text_config", None) or c


def export_all(a, model, tok):
    import torch

    visual, lm, lm_head, embed = parts(model)
    tc = text_config(model)
    vc = model.config.vision_config
    H = tc.hidden_size
    L = tc.num_hidden_layers
    kv = tc.num_key_value_heads
    hd = getattr(tc, "head_dim", None) or H // tc.num_attention_heads
    video_pad = tok.convert_tokens_to_ids("<|video_pad|>")
    os.makedirs(a.out, exist_ok=True)
    op = 17

    class Vision(torch.nn.Module):
        def forward(self, pixel_values, image_grid_thw):
            return visual(pixel_values, grid_thw=image_grid_thw)

    class Embedding(torch.nn.Module):
        def forward(self, input_ids, image_features):
            emb = embed(input_ids)
            flat = input_ids.reshape(-1)
            is_pad = flat == video_pad
            idx = torch.cumsum(is_pad.to(torch.int64), 0) - 1
            m = image_features.shape[0]
            sel = torch.where(is_pad, torch.clamp(idx, max=m), torch.full_like(idx, m))
            ext = torch.cat([image_features.to(emb.dtype), torch.zeros(1, emb.shape[-1], dtype=emb.dtype)], 0)
            got = ext[sel].reshape(emb.shape)
            return torch.where(is_pad.reshape(input_ids.shape).unsqueeze(-1), got, emb)

    class Decoder(torch.nn.Module):
        def forward(self, inputs_embeds, attention_mask, position_ids, *past):
            from transformers.cache_utils import DynamicCache

            cache = DynamicCache()
            for i in range(L):
                cache.update(past[2 * i], past[2 * i + 1], i)
            p = past[0].shape[2]
            s = inputs_embeds.shape[1]
            cache_position = torch.arange(s, dtype=torch.int64) + p
            out = lm(inputs_embeds=inputs_embeds, attention_mask=attention_mask, position_ids=position_ids,
                     past_key_values=cache, use_cache=True, cache_position=cache_position, return_dict=True)
            logits = lm_head(out.last_hidden_state)
            c = out.past_key_values
            pres = []
            for i in range(L):
                if hasattr(c, "layers"):
                    pres += [c.layers[i].keys, c.layers[i].values]
                else:
                    pres += [c.key_cache[i], c.value_cache[i]]
            return (logits, *pres)

    gt, gh, gw = a.grid
    n = gt * gh * gw
    pd = 3 * vc.temporal_patch_size * vc.patch_size * vc.patch_size
    px = torch.randn(n, pd)
    grid = torch.tensor([[gt, gh, gw]], dtype=torch.int64)
    paths = {r: os.path.join(a.out, r + ".onnx") for r in ("vision", "embedding", "decoder")}
    with torch.no_grad():
        print("export vision for grid", a.grid, flush=True)
        torch.onnx.export(Vision(), (px, grid), paths["vision"], input_names=["pixel_values", "image_grid_thw"],
                          output_names=["image_features"], opset_version=op, dynamo=False)
        feats = Vision()(px, grid)
        ids = torch.tensor([[151644, 872, 198, 151652] + [video_pad] * feats.shape[0] + [151653]], dtype=torch.int64)
        print("export embedding", flush=True)
        torch.onnx.export(Embedding(), (ids, feats), paths["embedding"], input_names=["input_ids", "image_features"],
                          output_names=["inputs_embeds"], opset_version=op, dynamo=False,
                          dynamic_axes={"input_ids": {0: "batch", 1: "seq"}, "image_features": {0: "num_tokens"},
                                        "inputs_embeds": {0: "batch", 1: "seq"}}, external_data=True)
        s, pl = 5, 7
        emb = torch.randn(1, s, H)
        am = torch.ones(1, pl + s, dtype=torch.int64)
        pos = (torch.arange(s, dtype=torch.int64) + pl).view(1, 1, s).expand(3, 1, s).contiguous()
        past = [torch.randn(1, kv, pl, hd) for _ in range(2 * L)]
        names_in = ["inputs_embeds", "attention_mask", "position_ids"] + [f"past_key_values.{i}.{k}" for i in range(L) for k in ("key", "value")]
        names_out = ["logits"] + [f"present.{i}.{k}" for i in range(L) for k in ("key", "value")]
        dyn = {"inputs_embeds": {0: "batch", 1: "seq"}, "attention_mask": {0: "batch", 1: "total"},
               "position_ids": {1: "batch", 2: "seq"}, "logits": {0: "batch", 1: "seq"}}
        for nm in names_in[3:]:
            dyn[nm] = {0: "batch", 2: "past"}
        for nm in names_out[1:]:
            dyn[nm] = {0: "batch", 2: "total"}
        print("export decoder", flush=True)
        torch.onnx.export(Decoder(), (emb, am, pos, *past), paths["decoder"], input_names=names_in, output_names=names_out,
                          dynamic_axes=dyn, opset_version=op, dynamo=False, external_data=True)
        ref = Decoder()(emb, am, pos, *past)[0].numpy()

    if not a.no_fp16:
        import onnx
        from onnxruntime.transformers.float16 import convert_float_to_float16

        print("vision -> fp16 weights (f32 IO)", flush=True)
        m = convert_float_to_float16(onnx.load(paths["vision"]), keep_io_types=True)
        onnx.save_model(m, paths["vision"], save_as_external_data=True, location="vision.onnx.data")
    if not a.no_quant:
        import onnx
        from onnxruntime.quantization.matmul_4bits_quantizer import MatMul4BitsQuantizer

        print("decoder -> int4 MatMulNBits (block 32, symmetric, accuracy_level 4)", flush=True)
        q = MatMul4BitsQuantizer(onnx.load(paths["decoder"]), block_size=32, is_symmetric=True, accuracy_level=4)
        q.process()
        for f in os.listdir(a.out):
            if f.startswith("decoder.onnx.data") or f.endswith(".data") and "decoder" in f:
                os.remove(os.path.join(a.out, f))
        q.model.save_model_to_file(paths["decoder"], use_external_data_format=True)

    if a.verify:
        import numpy as np
        import onnxruntime as ort

        sess = ort.InferenceSession(paths["decoder"], providers=["CPUExecutionProvider"])
        feed = {k: v.numpy() for k, v in zip(names_in, (emb, am, pos, *past))}
        got = sess.run(["logits"], feed)[0]
        print(f"verify decoder: max |logit diff| vs torch = {np.abs(got - ref).max():.4g} (int4: expect ~1e-1; --no-quant: ~1e-4)")
        es = ort.InferenceSession(paths["embedding"], providers=["CPUExecutionProvider"])
        e = es.run(None, {"input_ids": ids.numpy(), "image_features": feats.numpy()})[0]
        want = Embedding()(ids, feats).detach().numpy()
        print(f"verify embedding: max diff {np.abs(e - want).max():.3g}; video rows == features: {np.allclose(e[0, 4:4 + feats.shape[0]], feats.numpy(), atol=1e-3)}")
    return paths, dict(hidden=H, layers=L, heads=tc.num_attention_heads, kv_heads=kv, head_dim=hd,
                       intermediate=tc.intermediate_size, vocab=tc.vocab_size,
                       mrope_section=list(tc.rope_scaling["mrope_section"]), rope_theta=float(tc.rope_theta))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", default="KlingTeam/VidEmo-3B")
    ap.add_argument("--tokenizer", default=None, help="tokenizer path or hub id (default: the model's)")
    ap.add_argument("--out", default="models/videmo-3b")
    ap.add_argument("--name", default=None)
    ap.add_argument("--grid", type=int, nargs=3, default=[8, 22, 22], metavar=("T", "H", "W"))
    ap.add_argument("--tiny-random", action="store_true", help="random tiny Qwen2_5_VLConfig instead of --model")
    ap.add_argument("--no-quant", action="store_true")
    ap.add_argument("--no-fp16", action="store_true")
    ap.add_argument("--verify", action="store_true")
    a = ap.parse_args()

    import make_tiny_videmo as t

    model, tok = load(a)
    paths, dims = export_all(a, model, tok)
    tokens = {k: tok.convert_tokens_to_ids(v) for k, v in (
        ("endoftext", "<|endoftext|>"), ("im_start", "<|im_start|>"), ("im_end", "<|im_end|>"),
        ("vision_start", "<|vision_start|>"), ("vision_end", "<|vision_end|>"), ("vision_pad", "<|vision_pad|>"),
        ("image_pad", "<|image_pad|>"), ("video_pad", "<|video_pad|>"))}
    cfg = dict(dims, tokens=tokens)
    name = a.name or ("videmo-tiny-hf" if a.tiny_random else "videmo-3b")
    man = os.path.join(os.path.dirname(os.path.abspath(a.out)), name + ".manifest.json")
    files = []
    for role in ("vision", "embedding", "decoder"):
        p = paths[role]
        files.append({"role": role, "path": os.path.relpath(p, os.path.dirname(man)), "sha256": t.sha256(p)})
        for f in sorted(os.listdir(a.out)):
            if f.startswith(role + ".onnx") and f != role + ".onnx":
                fp = os.path.join(a.out, f)
                files.append({"role": role + ".data", "path": os.path.relpath(fp, os.path.dirname(man)), "sha256": t.sha256(fp)})
    pre = t.preprocess_config(308)
    pre["min_pixels"], pre["max_pixels"] = 100352, 105369  # VidEmo: VIDEO_MAX_PIXELS=100352 (see engine/videmo.DefaultPreprocess)
    pre["tokens_per_second"] = model.config.vision_config.tokens_per_second
    t.write_manifest(man, name, "videmo-tiny-hf-int4" if a.tiny_random else "videmo-3b-int4", "export-1", files, cfg, pre, 0, 128,
                     extra_source={"generator": "scripts/export_videmo.py", "model": "tiny-random" if a.tiny_random else a.model,
                                   "vision_grid": a.grid})
    with open(man) as f:
        m = json.load(f)
    m["licence"] = "see the model card of " + (a.model if not a.tiny_random else "(random)")
    m["vision_grids"] = [a.grid]
    with open(man, "w") as f:
        json.dump(m, f, indent=2)
        f.write("\n")
    print("wrote", man)


if __name__ == "__main__":
    main()
