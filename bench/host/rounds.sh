# Sourced by bench/host/inproc_run.sh and vhost_{blk,net}_linux_run.sh
# (busybox sh, shipped beside them): medians and ratios over the rounds of
# ./figures, one "ROUND WHO FIGURE VALUE" line per measured figure.

# rounds_median WHO FIGURE: of the rounds that produced the figure
rounds_median() {
    awk -v w="$1" -v f="$2" '$2 == w && $3 == f { print $4 }' figures | sort -n |
        awk '{ v[NR] = $1 } END { if (NR) print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}

# rounds_ratio A B FIGURE: the median over the rounds that gave both of B's
# figure over A's (each round measures every one in turn), or "-"
rounds_ratio() {
    awk -v a="$1" -v b="$2" -v f="$3" '$3 == f && $2 == a { x[$1] = $4 } $3 == f && $2 == b { y[$1] = $4 }
        END {
            for (r in x) if ((r in y) && x[r] > 0) v[++n] = y[r] / x[r]
            if (!n) { print "-"; exit }
            for (i = 2; i <= n; i++) for (j = i; j > 1 && v[j - 1] > v[j]; j--) { t = v[j]; v[j] = v[j - 1]; v[j - 1] = t }
            printf "%.2f", (n % 2) ? v[(n + 1) / 2] : (v[n / 2] + v[n / 2 + 1]) / 2 }' figures
}
