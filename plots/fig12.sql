-- Fig. 12: dequantization overhead against requests.  :what selects the
-- panel: 'time' (dequant and expert compute seconds, per-level kernel),
-- 'memory' (peak MB with and without the transient FP16 copy counted,
-- per-level kernel), 'latency' (makespan s of the per-level kernel, a
-- dequantize pass then the GEMM, against the fused kernel that dequantizes
-- in step with the GEMM; both with the copy counted).  The panels share the
-- column names of the first SELECT: the third is named after the figure's
-- y_column in figures.ini (time_s, peak_mem_mb, makespan_s).
WITH r AS (SELECT id FROM sweep_runs WHERE sweep = :sweep AND variant = :variant),
v AS (SELECT r.id,
        (SELECT CAST(value AS INTEGER) FROM params WHERE run_id = r.id AND key = 'sim.requests') AS req,
        (SELECT value FROM params WHERE run_id = r.id AND key = 'sim.transient_fp16') AS tr,
        (SELECT value FROM params WHERE run_id = r.id AND key = 'sim.nested_kernel') AS nk
      FROM r JOIN runs ON runs.id = r.id AND runs.status = 'ok')
SELECT 'dequantization' AS series, req AS requests, (SELECT value FROM metrics WHERE run_id = v.id AND name = 'dequant_s') AS ":y_column" FROM v WHERE :what = 'time' AND tr = 'true' AND nk = 'per-level'
UNION ALL
SELECT 'expert compute (total)', req, (SELECT value FROM metrics WHERE run_id = v.id AND name = 'expert_compute_s') FROM v WHERE :what = 'time' AND tr = 'true' AND nk = 'per-level'
UNION ALL
SELECT CASE tr WHEN 'true' THEN 'with transient FP16 copy' ELSE 'without transient FP16 copy' END, req,
       (SELECT value FROM metrics WHERE run_id = v.id AND name = 'peak_mem_mb') FROM v WHERE :what = 'memory' AND nk = 'per-level'
UNION ALL
SELECT CASE nk WHEN 'fused' THEN 'fused (dequantize within the GEMM)' ELSE 'per-level (dequantize, then GEMM)' END, req,
       (SELECT value FROM metrics WHERE run_id = v.id AND name = 'makespan_s') FROM v WHERE :what = 'latency' AND tr = 'true'
ORDER BY 1, 2;
