-- Beyond the paper: HEBF and id order against the optimal load order (makespan excess per layer step), across flash bandwidth
WITH r AS (SELECT id FROM sweep_runs WHERE sweep = 'hebf-gap' AND variant = :variant)
SELECT CAST(bw.value AS REAL) / 1e9 AS flash_GBs, CAST(q.value AS INTEGER) AS R,
       printf('%.2f%%', 100 * g.value) AS hebf_mean, printf('%.2f%%', 100 * gm.value) AS hebf_max,
       printf('%.2f%%', 100 * gi.value) AS idorder_mean, CAST(st.value AS INTEGER) AS steps, CAST(sk.value AS INTEGER) AS skipped
FROM r JOIN runs ON runs.id = r.id AND runs.status = 'ok'
JOIN params bw ON bw.run_id = r.id AND bw.key = 'device.flash_bw'
JOIN params q ON q.run_id = r.id AND q.key = 'sim.requests'
JOIN metrics g ON g.run_id = r.id AND g.name = 'plan_gap_mean'
JOIN metrics gm ON gm.run_id = r.id AND gm.name = 'plan_gap_max'
JOIN metrics gi ON gi.run_id = r.id AND gi.name = 'plan_gap_idorder_mean'
JOIN metrics st ON st.run_id = r.id AND st.name = 'plan_gap_steps'
JOIN metrics sk ON sk.run_id = r.id AND sk.name = 'plan_gap_skipped'
ORDER BY 2, 1;
