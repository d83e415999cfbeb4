-- Beyond the paper: throughput against estimated perplexity, one point per
-- (bit-routing policy, budget); series: policy.
WITH r AS (SELECT max(j.run_id) AS id FROM sweep_jobs j JOIN runs rv ON rv.id = j.run_id
           WHERE j.sweep = :sweep AND rv.variant = :variant GROUP BY j.job_hash)
SELECT br.value, p.value, t.value, CAST(bud.value AS REAL) / 1e6
FROM r JOIN runs ON runs.id = r.id AND runs.status = 'ok'
JOIN params br ON br.run_id = r.id AND br.key = 'sim.bitroute'
JOIN params bud ON bud.run_id = r.id AND bud.key = 'sim.budget'
JOIN metrics p ON p.run_id = r.id AND p.name = 'est_ppl'
JOIN metrics t ON t.run_id = r.id AND t.name = 'throughput_tps'
ORDER BY 1, 4;
