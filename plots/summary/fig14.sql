-- Fig. 14 headline: throughput of each ablation step and its gain over the step before
WITH r AS (SELECT id FROM sweep_runs WHERE sweep = 'fig14' AND variant = :variant),
v AS (SELECT r.id,
        (SELECT value FROM params WHERE run_id = r.id AND key = 'model.name') AS model,
        (SELECT value FROM params WHERE run_id = r.id AND key = 'sim.policy') AS policy,
        (SELECT value FROM metrics WHERE run_id = r.id AND name = 'throughput_tps') AS tps
      FROM r JOIN runs ON runs.id = r.id AND runs.status = 'ok'),
o AS (SELECT *, CASE policy WHEN 'ablate-router' THEN 0 WHEN 'ablate-mwq' THEN 1 WHEN 'ablate-hebf' THEN 2 ELSE 3 END AS step FROM v)
SELECT a.model, a.step, a.policy, round(a.tps, 2) AS "tok/s",
       CASE WHEN b.tps IS NULL THEN '' ELSE printf('%.2fx', a.tps / b.tps) END AS "vs_previous"
FROM o a LEFT JOIN o b ON b.model = a.model AND b.step = a.step - 1 ORDER BY a.model, a.step;
