#!/usr/bin/env bash
# test_convert.sh — the PyTorch converter round trip on the full-width
# VGG-16 (with and without Sobel): a network in the original's module layout,
# saved as the original saves checkpoints (a dict with 'state_dict', keys
# prefixed 'module.'), converted by tools/convert_pytorch.py, run by the C
# engine; its features must equal PyTorch's. Needs Debian's python3-torch:
# skipped, with the reason, where it is not installed (as in CI).
. "$(dirname "$0")/lib.sh" convert
B=$(dirname "$BIN")
PY=/usr/bin/python3
$PY -c "import torch, numpy" 2>/dev/null || skip "$PY has no torch (apt-get install python3-torch) — converter round trip not run"
for sobel in 1 0; do
  $PY - "$TMP" $sobel "$DC_TEST_ROOT" <<'PYEOF' || { fail=$((fail + 1)); continue; }
import os, sys
import numpy as np, torch
tmp, sobel, root = sys.argv[1], int(sys.argv[2]), sys.argv[3]
sys.path.insert(0, os.path.join(root, "tools"))
import gen_nn_fixtures as g
torch.manual_seed(sobel)
cfg = dict(features="64 64 M 128 128 M 256 256 256 M 512 512 512 M 512 512 512 M", hidden=4096, input=224,
           sobel=sobel, in_c=3, seed=1, dropout=0.5)
net = g.Net(cfg)
net.body.classifier[2] = torch.nn.Dropout(0.5)
for m in net.modules():  # non-trivial running statistics
    if isinstance(m, torch.nn.BatchNorm2d):
        m.running_mean.uniform_(-0.1, 0.1); m.running_var.uniform_(0.5, 1.5)
net.eval()
sd = {"module." + k: v for k, v in net.state_dict().items()}
torch.save({"epoch": 3, "state_dict": sd}, os.path.join(tmp, "model.pth"))
x = torch.randn(2, 3, 224, 224)
with torch.no_grad():
    y = net(x)
np.save(os.path.join(tmp, "input.npy"), x.numpy())
np.save(os.path.join(tmp, "expect.npy"), y.numpy())
PYEOF
  if $PY "$DC_TEST_ROOT/tools/convert_pytorch.py" "$TMP/model.pth" "$TMP/model.safetensors" >"$TMP/conv.log" 2>&1; then
    pass=$((pass + 1))
  else
    fail=$((fail + 1)); echo "FAIL: converter: $(cat "$TMP/conv.log")" >&2; continue
  fi
  out=$(DC_FWD_WEIGHTS="$TMP/model.safetensors" DC_FWD_INPUT="$TMP/input.npy" DC_FWD_EXPECT="$TMP/expect.npy" "$B/tests/test_forward" 2>&1)
  echo "$out" | grep -v passed
  line=$(echo "$out" | grep -E '^[0-9]+ passed, [0-9]+ failed$')
  p=${line%% passed*}; f=${line#*, }; f=${f%% failed*}
  pass=$((pass + ${p:-0})); fail=$((fail + ${f:-1}))
done
rm -rf "$TMP"
summary
