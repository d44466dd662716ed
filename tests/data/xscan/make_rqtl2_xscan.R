# R/qtl2 0.43-5 references for the X chromosome scan (tests/test_xscan.py).
# Run from the repository root:  Rscript tests/data/xscan/make_rqtl2_xscan.R
suppressMessages(library(qtl2))
cross <- read_cross2("tests/data/cross/iron_subset.zip")
pr <- calc_genoprob(cross)                  # markers only, error_prob = 1e-4, haldane (R/qtl2 defaults)
K <- calc_kinship(pr, "loco")               # use_allele_probs = TRUE, omit_x = FALSE
Xcovar <- get_x_covar(cross)
write.csv(data.frame(id = rownames(Xcovar), Xcovar, check.names = FALSE),
          "tests/data/xscan/rqtl2_get_x_covar.csv", row.names = FALSE)
sex <- cbind(sex = (cross$covar$sex == "m") * 1)
rownames(sex) <- rownames(cross$covar)
map <- cross$gmap
mk <- unlist(lapply(map, names)); chr <- rep(names(map), vapply(map, length, 1L)); pos <- unlist(map)
out <- list()
for (case in c("none", "sex")) {
    ac <- if (case == "sex") sex else NULL
    s <- scan1(pr, cross$pheno, kinship = K, addcovar = ac, Xcovar = Xcovar)
    out[[case]] <- data.frame(addcovar = case, marker = mk, chr = chr, pos = pos,
                              s[mk, , drop = FALSE], check.names = FALSE)
    h <- attr(s, "hsq")
    write.csv(data.frame(addcovar = case, chr = rownames(h), h, check.names = FALSE),
              sprintf("tests/data/xscan/rqtl2_hsq_%s.csv", case), row.names = FALSE)
}
write.csv(do.call(rbind, out), "tests/data/xscan/rqtl2_scan1_x.csv", row.names = FALSE)
# chromosome lengths for perm_Xsp (scan1perm's chr_lengths) and the X permutation count for n_perm = 100
L <- chr_lengths(map, collapse_to_AX = TRUE)
cat(sprintf("L_A=%.10g L_X=%.10g n_permX(100)=%d\n", L[["A"]], L[["X"]], ceiling(100 * L[["A"]] / L[["X"]])))
