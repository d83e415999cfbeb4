-- Fig. 11: dense LLaMA2-13B; :metric (throughput_tps or peak_mem_mb) against
-- requests, one series per method.  The .dat header names the third column
-- after :metric (an alias ":KEY" is the figure's KEY in figures.ini).
WITH r AS (SELECT id FROM sweep_runs WHERE sweep = :sweep AND variant = :variant)
SELECT pol.value AS method, CAST(req.value AS INTEGER) AS requests, CASE WHEN runs.status = 'ok' THEN m.value END AS ":metric"
FROM r JOIN runs ON runs.id = r.id
JOIN params pol ON pol.run_id = r.id AND pol.key = 'sim.policy'
JOIN params req ON req.run_id = r.id AND req.key = 'sim.requests'
LEFT JOIN metrics m ON m.run_id = r.id AND m.name = :metric
ORDER BY 1, 2;
