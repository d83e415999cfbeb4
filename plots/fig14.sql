-- Fig. 14: ablation.  Throughput of each step, one series per model; x is
-- the step's position, column 4 its name.
WITH r AS (SELECT id FROM sweep_runs WHERE sweep = :sweep AND variant = :variant)
SELECT mo.value AS model,
       CASE pol.value WHEN 'ablate-router' THEN 0 WHEN 'ablate-mwq' THEN 1 WHEN 'ablate-hebf' THEN 2 ELSE 3 END AS step,
       CASE WHEN runs.status = 'ok' THEN m.value END AS throughput_tps,
       CASE pol.value WHEN 'ablate-router' THEN 'Router' WHEN 'ablate-mwq' THEN '+MWQ' WHEN 'ablate-hebf' THEN '+HEBF' ELSE '+Budget' END AS step_name
FROM r JOIN runs ON runs.id = r.id
JOIN params mo ON mo.run_id = r.id AND mo.key = 'model.name'
JOIN params pol ON pol.run_id = r.id AND pol.key = 'sim.policy'
LEFT JOIN metrics m ON m.run_id = r.id AND m.name = 'throughput_tps'
ORDER BY 1, 2;
