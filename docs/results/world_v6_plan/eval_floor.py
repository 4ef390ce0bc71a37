"""How far the fixed evaluation users' own Bayes loss lies from the analytical floor (world_v6's world).

Every run of a world sweep is scored on the same evaluation users, so their sampling error is a common offset:
it does not add seed noise, but it moves the loss every run can reach, and so the E a fit should recover.
"""

from pathlib import Path

import numpy as np
import tomllib

from scalerec.data.ingest import world as W
from scalerec.scaling.world import eval_sequences, eval_target_losses, world_from_spec

spec = tomllib.loads(Path("configs/sweeps/world_v6.toml").read_text(encoding="utf-8"))
cfg, n_eval = world_from_spec(spec["world"])
world = W.World.build(cfg)
seqs = eval_sequences(world, n_eval)  # the users write_world writes and every run is scored on
valid, test = eval_target_losses(world, seqs)  # the means write_world records as world.json's eval_floor
floor = world.bayes_floor()
for name, x in (("valid", valid), ("test", test)):
    m, se = x.mean(), x.std(ddof=1) / np.sqrt(x.size)
    print(
        f"{name}: eval users {x.size}, empirical Bayes loss {m:.4f} (se {se:.4f}),"
        f" analytical floor {floor:.4f}, difference {100 * (m / floor - 1):+.2f}%,"
        f" per-target sd {x.std(ddof=1):.3f}"
    )
