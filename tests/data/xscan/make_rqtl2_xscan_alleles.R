# R/qtl2 0.43-5 references for the X chromosome scanned on allele probabilities (tests/test_allele_map.py).
# Run from the repository root:  Rscript tests/data/xscan/make_rqtl2_xscan_alleles.R
# doex_x.zip: 60 DO mice, chromosomes 3 and X. Columns: case, marker, chr, OF_immobile_pct (the LOD):
#   case "xcovar":   scan1(apr, pheno, K, Xcovar = get_x_covar(cross))  -- R's own: Xcovar in the null only
#   case "addcovar": scan1(apr, pheno, K, addcovar = get_x_covar(cross)) on X, scan1(apr, pheno, K) on 3
suppressMessages(library(qtl2))
cross <- read_cross2("tests/data/cross/doex_x.zip")
pr <- calc_genoprob(cross)                  # markers only, error_prob = 1e-4, haldane (R/qtl2 defaults)
apr <- genoprob_to_alleleprob(pr)
K <- calc_kinship(pr, "loco")
Xcovar <- get_x_covar(cross)
own <- scan1(apr, cross$pheno, kinship = K, Xcovar = Xcovar)
ours <- rbind(scan1(apr[, "3"], cross$pheno, kinship = K["3"]),
              scan1(apr[, "X"], cross$pheno, kinship = K["X"], addcovar = Xcovar))
mk <- rownames(own)
chr <- rep(names(apr), vapply(names(apr), function(c) dim(apr[[c]])[3], 1L))
out <- rbind(data.frame(case = "xcovar", marker = mk, chr = chr, own[mk, , drop = FALSE], check.names = FALSE),
             data.frame(case = "addcovar", marker = mk, chr = chr, ours[mk, , drop = FALSE], check.names = FALSE))
write.csv(out, "tests/data/xscan/rqtl2_scan1_alleles_x.csv", row.names = FALSE)
