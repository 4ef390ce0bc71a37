"""Mean training loss per 1,500 steps: the CPU packed run against the H200 packed and padded runs."""
import gzip
import json
import sys

D = sys.argv[1] if len(sys.argv) > 1 else 'docs/results/accuracy/h200_2026-12-05_packing_control'
def bins(rows, width=1500, top=27000):
    tr=[r for r in rows if 'train/loss' in r]; out=[]
    for lo in range(0, top, width):
        w=[r['train/loss'] for r in tr if lo<=r['step']<lo+width]
        out.append(round(sum(w)/len(w),3) if w else None)
    return out
cpu=[json.loads(l) for l in gzip.open(f'{D}/cpu_packed_s0.metrics.jsonl.gz')]
print('bin start', list(range(0,27000,1500)))
print('cpu packed', bins(cpu))
for a in ['packed','padded']:
    for s in range(3):
        print(f'gpu {a} s{s}', bins([json.loads(l) for l in gzip.open(f'{D}/{a}_s{s}.metrics.jsonl.gz')]))
v=[(r['step'], round(r['valid/ndcg@10'],4), round(r.get('valid/loss',0),3)) for r in cpu if 'valid/ndcg@10' in r]
print('cpu valid', v)
