-- Beyond the paper: mean relative makespan excess over the optimal order
-- (percent) per layer step against requests; series: planner x model.
WITH r AS (SELECT max(run_id) AS id FROM sweep_jobs WHERE sweep = 'hebf-gap' GROUP BY job_hash),
v AS (SELECT r.id,
        (SELECT value FROM params WHERE run_id = r.id AND key = 'model.name') AS model,
        (SELECT CAST(value AS INTEGER) FROM params WHERE run_id = r.id AND key = 'sim.requests') AS req
      FROM r JOIN runs ON runs.id = r.id AND runs.status = 'ok')
SELECT 'HEBF_' || model, req, 100 * (SELECT value FROM metrics WHERE run_id = v.id AND name = 'plan_gap_mean') FROM v
UNION ALL
SELECT 'id-order_' || model, req, 100 * (SELECT value FROM metrics WHERE run_id = v.id AND name = 'plan_gap_idorder_mean') FROM v
ORDER BY 1, 2;
