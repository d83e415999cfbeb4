-- Beyond the paper: bit-routing policy vs throughput and estimated perplexity (D2MoE V1, LLaMA-MoE, Env 1)
WITH r AS (SELECT id FROM sweep_runs WHERE sweep = 'bitroute' AND variant = :variant)
SELECT br.value AS bitroute, CAST(bud.value AS REAL) / 1e6 AS M_MB, round(t.value, 2) AS "tok/s",
       printf('%.3f', p.value) AS est_ppl, printf('%.2f', b.value) AS avg_bits
FROM r JOIN runs ON runs.id = r.id AND runs.status = 'ok'
JOIN params br ON br.run_id = r.id AND br.key = 'sim.bitroute'
JOIN params bud ON bud.run_id = r.id AND bud.key = 'sim.budget'
JOIN metrics t ON t.run_id = r.id AND t.name = 'throughput_tps'
LEFT JOIN metrics p ON p.run_id = r.id AND p.name = 'est_ppl'
LEFT JOIN metrics b ON b.run_id = r.id AND b.name = 'avg_bits'
ORDER BY 2, 1;
