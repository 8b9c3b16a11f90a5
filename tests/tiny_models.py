"""Tiny random Audio Flamingo 3 / Music Flamingo checkpoints, built offline in about a second.

They use the real transformers classes (config, processor, tokenizer, feature extractor, model) at a
toy size, so the loading, batching and generation code paths run for real; their replies are
random bytes, which is exactly what exercises the "model said nothing usable" path.

Recipe (FIELD_NOTES): a byte-level ``Qwen2Tokenizer`` whose vocab is ``<|endoftext|>`` plus the 256
byte symbols, special tokens for the chat and the audio, a Qwen-style chat template that emits
``<sound>`` for the audio item, a ``WhisperFeatureExtractor(feature_size=128)``, and a config with a
1-layer ``audioflamingo3_encoder`` and a 1-layer Qwen2 text model.

Usage from other tests: ``build_tiny_flamingo(tmp_dir, "audioflamingo3" | "musicflamingo") -> Path``.
"""

from __future__ import annotations

from pathlib import Path

KINDS = ("audioflamingo3", "musicflamingo")

CHAT_TEMPLATE = (
    "{%- for message in messages -%}"
    "<|im_start|>{{ message['role'] }}\n"
    "{%- if message['content'] is string -%}{{ message['content'] }}"
    "{%- else -%}{%- for item in message['content'] -%}"
    "{%- if item['type'] == 'audio' -%}<sound>"
    "{%- elif item['type'] == 'text' -%}{{ item['text'] }}"
    "{%- endif -%}{%- endfor -%}{%- endif -%}"
    "<|im_end|>\n"
    "{%- endfor -%}"
    "{%- if add_generation_prompt -%}<|im_start|>assistant\n{%- endif -%}"
)

SPECIAL_TOKENS = ("<|im_start|>", "<|im_end|>", "<sound>", "<|sound_bos|>", "<|sound_eos|>")


def _tokenizer():
    from tokenizers.pre_tokenizers import ByteLevel
    from transformers import Qwen2Tokenizer

    vocab = {"<|endoftext|>": 0}
    for symbol in sorted(ByteLevel.alphabet()):
        vocab.setdefault(symbol, len(vocab))
    tok = Qwen2Tokenizer(vocab=vocab, merges=[], unk_token=None, bos_token=None, eos_token="<|endoftext|>",
                         pad_token="<|endoftext|>")
    tok.add_special_tokens({"additional_special_tokens": list(SPECIAL_TOKENS)})
    tok.eos_token = "<|im_end|>"
    return tok


def build_tiny_flamingo(out_dir: str | Path, kind: str = "audioflamingo3", *, seed: int = 0) -> Path:
    """Save a tiny random checkpoint of ``kind`` (``audioflamingo3`` or ``musicflamingo``) under
    ``out_dir`` and return that directory (loadable with ``from_pretrained(path)`` offline).
    """
    import torch
    from transformers import (
        AudioFlamingo3Config,
        AudioFlamingo3ForConditionalGeneration,
        AudioFlamingo3Processor,
        MusicFlamingoConfig,
        MusicFlamingoForConditionalGeneration,
        MusicFlamingoProcessor,
        WhisperFeatureExtractor,
    )

    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}, got {kind!r}")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    tok = _tokenizer()
    ids = {t: tok.convert_tokens_to_ids(t) for t in SPECIAL_TOKENS}
    features = WhisperFeatureExtractor(feature_size=128)
    audio_config = {"model_type": "audioflamingo3_encoder", "num_mel_bins": 128, "max_source_positions": 1500,
                    "hidden_size": 16, "num_hidden_layers": 1, "num_attention_heads": 2,
                    "intermediate_size": 32}
    text_config = {"model_type": "qwen2", "hidden_size": 32, "num_hidden_layers": 1, "num_attention_heads": 2,
                   "num_key_value_heads": 1, "intermediate_size": 64, "vocab_size": len(tok),
                   "max_position_embeddings": 8192, "eos_token_id": ids["<|im_end|>"],
                   "pad_token_id": 0, "bos_token_id": None}
    torch.manual_seed(seed)
    if kind == "audioflamingo3":
        config = AudioFlamingo3Config(audio_config=audio_config, text_config=text_config,
                                      audio_token_id=ids["<sound>"])
        model = AudioFlamingo3ForConditionalGeneration(config)
        processor = AudioFlamingo3Processor(features, tok, chat_template=CHAT_TEMPLATE)
    else:
        config = MusicFlamingoConfig(audio_config=audio_config, text_config=text_config,
                                     audio_token_id=ids["<sound>"], audio_bos_token_id=ids["<|sound_bos|>"],
                                     audio_eos_token_id=ids["<|sound_eos|>"],
                                     rope_parameters={"rope_type": "default", "rope_theta": 1200,
                                                      "partial_rotary_factor": 0.2})
        model = MusicFlamingoForConditionalGeneration(config)
        processor = MusicFlamingoProcessor(features, tok, chat_template=CHAT_TEMPLATE)
    model.generation_config.eos_token_id = ids["<|im_end|>"]
    model.generation_config.pad_token_id = 0
    model.save_pretrained(out)
    processor.save_pretrained(out)
    return out


SCRIPTED_REPLY = ('{"genre": "Synthpop", "tempo": "120 BPM", "key": "C major", "instruments": "synths, drum machine", '
                  '"production_style": "clean", "mood": "upbeat", "content_usefulness": 0.7, '
                  '"production_quality": 0.8, "content_enjoyment": 0.6, "production_complexity": 0.5, '
                  '"overall_recommendation_score": 0.9}')


def build_scripted_flamingo(out_dir: str | Path, kind: str = "audioflamingo3", reply: str = SCRIPTED_REPLY) -> Path:
    """A tiny checkpoint whose greedy reply is always ``reply``: real classes, hand-set weights.

    ``reply`` is added to the tokenizer as one (non-special) token. The decoder layer's output
    projections are zeroed, so each position's hidden state is its own token embedding (attention,
    and with it the audio, cannot move it); ``lm_head`` then maps the prompt's last token to the
    reply token and the reply token to ``<|im_end|>``: a two-step bigram model. This exercises the
    real load -> process -> generate -> decode path with a parseable answer.
    """
    import torch
    from transformers import AutoProcessor

    path = build_tiny_flamingo(out_dir, kind)
    processor = AutoProcessor.from_pretrained(path, local_files_only=True)
    tok = processor.tokenizer
    tok.add_tokens([reply])
    reply_id = tok.convert_tokens_to_ids(reply)
    eos_id = tok.convert_tokens_to_ids("<|im_end|>")
    probe = processor.apply_chat_template([[{"role": "user", "content": [{"type": "text", "text": "x"}]}]],
                                          tokenize=True, add_generation_prompt=True, return_dict=True)
    last_id = int(probe["input_ids"][0, -1])
    processor.save_pretrained(path)

    model_cls = _model_class(kind)
    model = model_cls.from_pretrained(path, local_files_only=True)
    model.resize_token_embeddings(len(tok))
    text = model.model.language_model if hasattr(model.model, "language_model") else model.language_model
    with torch.no_grad():
        for layer in text.layers:
            layer.self_attn.o_proj.weight.zero_()
            layer.mlp.down_proj.weight.zero_()
        emb = text.embed_tokens.weight
        hidden = emb.shape[1]
        # Two orthogonal directions for the two tokens that matter; every other token is near zero.
        emb.mul_(0.01)
        basis = torch.linalg.qr(torch.randn(hidden, 2))[0].T  # (2, hidden), orthonormal rows
        emb[last_id] = basis[0]
        emb[reply_id] = basis[1]
        head = model.get_output_embeddings().weight
        head.zero_()
        head[reply_id] = basis[0] * 50
        head[eos_id] = basis[1] * 50
    model.config.text_config.vocab_size = len(tok)
    model.save_pretrained(path)
    return path


def _model_class(kind: str):
    import transformers

    return {"audioflamingo3": transformers.AudioFlamingo3ForConditionalGeneration,
            "musicflamingo": transformers.MusicFlamingoForConditionalGeneration}[kind]
