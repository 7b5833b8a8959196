"""Special tokens shared by every tokenizer, at the same ids, so models and tasks can rely on them."""

from __future__ import annotations

PAD, UNK, BOS, EOS, SEP, CLS, MASK = "<pad>", "<unk>", "<bos>", "<eos>", "<sep>", "<cls>", "<mask>"
SPECIAL_TOKENS: tuple[str, ...] = (PAD, UNK, BOS, EOS, SEP, CLS, MASK)
PAD_ID, UNK_ID, BOS_ID, EOS_ID, SEP_ID, CLS_ID, MASK_ID = range(len(SPECIAL_TOKENS))
NUM_SPECIAL = len(SPECIAL_TOKENS)
