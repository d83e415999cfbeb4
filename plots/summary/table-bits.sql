-- Bit-width trade-off table (LLaMA-MoE, one bit-width for all weights, all resident, R = 1, RTX 4090): ours beside the paper's llama.cpp measurements; est_ppl equals paper_ppl by construction (the estimate is fitted to this curve), not a reproduction
WITH r AS (SELECT id FROM sweep_runs WHERE sweep = 'table-bits' AND variant = :variant),
paper(bits, mem_gb, tps, ppl) AS (VALUES (2, 3.04, 50.47, 20.95), (3, 3.80, 45.91, 15.10), (4, 4.48, 43.82, 14.72),
                                         (5, 5.10, 40.15, 14.63), (6, 5.60, 37.72, 14.62), (8, 7.24, 35.34, 14.55),
                                         (16, 13.60, 23.45, 14.55))
SELECT CAST(b.value AS INTEGER) AS bits,
       printf('%.2f', m.value / 1e3) AS mem_GB, p.mem_gb AS paper_mem_GB,
       printf('%.1f', t.value) AS "tok/s", p.tps AS "paper_tok/s",
       printf('%.2f', e.value) AS est_ppl, p.ppl AS paper_ppl
FROM r JOIN runs ON runs.id = r.id AND runs.status = 'ok'
JOIN params b ON b.run_id = r.id AND b.key = 'sim.nonexpert_bits'
JOIN metrics m ON m.run_id = r.id AND m.name = 'peak_mem_mb'
JOIN metrics t ON t.run_id = r.id AND t.name = 'throughput_tps'
LEFT JOIN metrics e ON e.run_id = r.id AND e.name = 'est_ppl'
LEFT JOIN paper p ON p.bits = CAST(b.value AS INTEGER)
ORDER BY 1;
