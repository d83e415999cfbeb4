-- Fig. 13: wall-clock time the planner spent (ms) against requests, one
-- series per model.  Measured, not simulated.
WITH r AS (SELECT max(j.run_id) AS id FROM sweep_jobs j JOIN runs rv ON rv.id = j.run_id
           WHERE j.sweep = :sweep AND rv.variant = :variant GROUP BY j.job_hash)
SELECT mo.value, CAST(req.value AS INTEGER), m.value * 1e3
FROM r JOIN runs ON runs.id = r.id AND runs.status = 'ok'
JOIN params mo ON mo.run_id = r.id AND mo.key = 'model.name'
JOIN params req ON req.run_id = r.id AND req.key = 'sim.requests'
JOIN metrics m ON m.run_id = r.id AND m.name = 'plan_overhead_s'
ORDER BY 1, 2;
