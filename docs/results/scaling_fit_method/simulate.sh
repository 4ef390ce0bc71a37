# CPU parametric bootstrap of two candidate grids (issue 18: check the plan before any GPU run).
# Assumed law: the synthetic world's Bayes floor E = 4.54 nats (issue 18), alpha_N = alpha_D = 0.3,
# N-term 0.5 nats at N = 1e5, D-term 1 nat at D = 1e6; noise = log-space sd of one run's loss.
# Sizes: the ladder's non-embedding N (tiny … l); D: 4 values over 1.5 decades.
set -e
LAW=E=4.54,A_N=15.8,alpha_N=0.3,A_D=63.1,alpha_D=0.3
N=30176,115648,824448,6429952,25639424
D=1e6,3.16e6,1e7,3.16e7
for NOISE in 0.005 0.002; do
  for SEEDS in 1 3; do
    python benchmarks/fit.py simulate --n $N --d $D --seeds $SEEDS --law $LAW --noise $NOISE --reps 10 --n-boot 50
  done
done
