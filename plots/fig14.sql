-- Fig. 14: ablation.  Throughput of each step, one series per model; x is
-- the step's position, column 4 its name.
WITH r AS (SELECT max(j.run_id) AS id FROM sweep_jobs j JOIN runs rv ON rv.id = j.run_id
           WHERE j.sweep = :sweep AND rv.variant = :variant GROUP BY j.job_hash)
SELECT mo.value,
       CASE pol.value WHEN 'ablate-router' THEN 0 WHEN 'ablate-mwq' THEN 1 WHEN 'ablate-hebf' THEN 2 ELSE 3 END,
       CASE WHEN runs.status = 'ok' THEN m.value END,
       CASE pol.value WHEN 'ablate-router' THEN 'Router' WHEN 'ablate-mwq' THEN '+MWQ' WHEN 'ablate-hebf' THEN '+HEBF' ELSE '+Budget' END
FROM r JOIN runs ON runs.id = r.id
JOIN params mo ON mo.run_id = r.id AND mo.key = 'model.name'
JOIN params pol ON pol.run_id = r.id AND pol.key = 'sim.policy'
LEFT JOIN metrics m ON m.run_id = r.id AND m.name = 'throughput_tps'
ORDER BY 1, 2;
