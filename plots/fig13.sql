-- Fig. 13: wall-clock time the planner spent per layer step (ms) against
-- requests, one series per model: the mean over the repeats (runs of the
-- same model and R, e.g. several seeds) with their minimum and maximum,
-- beside the simulated time of one layer step (makespan / layer steps), the
-- time the plan has to be ready in.  Planning time is measured, not simulated.
-- Columns: series, R, mean, min, max, repeats.
WITH r AS (SELECT id FROM sweep_runs WHERE sweep = :sweep AND variant = :variant),
v AS (SELECT mo.value AS model, CAST(req.value AS INTEGER) AS req,
             1e3 * po.value / st.value AS plan_ms, 1e3 * ms.value / st.value AS step_ms
      FROM r JOIN runs ON runs.id = r.id AND runs.status = 'ok'
      JOIN params mo ON mo.run_id = r.id AND mo.key = 'model.name'
      JOIN params req ON req.run_id = r.id AND req.key = 'sim.requests'
      JOIN metrics po ON po.run_id = r.id AND po.name = 'plan_overhead_s'
      JOIN metrics ms ON ms.run_id = r.id AND ms.name = 'makespan_s'
      JOIN metrics st ON st.run_id = r.id AND st.name = 'layer_steps' AND st.value > 0)
SELECT model || ': planning per step' AS series, req AS requests, avg(plan_ms) AS mean_ms, min(plan_ms) AS min_ms, max(plan_ms) AS max_ms,
       count(*) AS runs FROM v GROUP BY model, req
UNION ALL
SELECT model || ': simulated step time', req, avg(step_ms), min(step_ms), max(step_ms), count(*) FROM v GROUP BY model, req
ORDER BY 1, 2;
