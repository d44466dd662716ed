# Reference values of R/qtl2 0.43-5 on the iron F2 intercross, for tests/test_peaks.py and
# tests/test_effects.py. Run from the repository root:
#
#   Rscript tests/data/qtl/make_rqtl2_fixtures.R tests/data/qtl /path/to/iron.zip
#
# Inputs (committed beside this script; the same numbers are read by the Python tests):
#   iron_genoprobs.csv.xz  calc_genoprob(read_cross2("iron.zip"), error_prob=0.002) on the
#                          autosomes, columns MARKER:GENOTYPE (checked below against R/qtl2's own
#                          calc_genoprob, then used as R/qtl2's genoprobs object)
#   iron_map.csv, iron_pheno.csv (liver, spleen), iron_covar.csv (sex: 1 = male)
# Outputs (rqtl2_*.csv): see the comments at each write.csv.
suppressMessages(library(qtl2))
args <- commandArgs(trailingOnly = TRUE)
dir <- args[1]
zip <- args[2]
options(digits = 17)
wcsv <- function(x, name) write.csv(x, file.path(dir, name), row.names = FALSE)

iron <- read_cross2(zip)
auto <- as.character(1:19)

# ---- the committed probabilities as an R/qtl2 calc_genoprob object --------------------------
map_tab <- read.csv(file.path(dir, "iron_map.csv"), colClasses = c("character", "character", "numeric"))
probs_tab <- read.csv(xzfile(file.path(dir, "iron_genoprobs.csv.xz")), check.names = FALSE,
                      row.names = 1, colClasses = c("character", rep("numeric", 3 * nrow(map_tab))))
ids <- rownames(probs_tab)
gen <- c("SS", "SB", "BB")
pr <- lapply(auto, function(chr) {
  mk <- map_tab$marker[map_tab$chr == chr]
  arr <- array(NA_real_, c(length(ids), 3, length(mk)), dimnames = list(ids, gen, mk))
  for (j in seq_along(mk)) arr[, , j] <- as.matrix(probs_tab[, paste0(mk[j], ":", gen)])
  arr
})
names(pr) <- auto
attr(pr, "crosstype") <- "f2"
attr(pr, "is_x_chr") <- setNames(rep(FALSE, length(auto)), auto)
attr(pr, "alleles") <- c("S", "B")
attr(pr, "alleleprobs") <- FALSE
class(pr) <- c("calc_genoprob", "list")

own <- calc_genoprob(iron[, auto], error_prob = 0.002)
worst <- max(vapply(auto, function(chr) max(abs(own[[chr]][ids, , ] - pr[[chr]])), 0.0))
cat("largest difference between the committed and R/qtl2's own probabilities:", worst, "\n")
stopifnot(worst < 1e-8)

map <- lapply(auto, function(chr) {
  sel <- map_tab$chr == chr
  setNames(map_tab$pos[sel], map_tab$marker[sel])
})
names(map) <- auto

pheno_tab <- read.csv(file.path(dir, "iron_pheno.csv"), row.names = 1)
pheno <- as.matrix(pheno_tab)
rownames(pheno) <- rownames(pheno_tab)
covar_tab <- read.csv(file.path(dir, "iron_covar.csv"), row.names = 1)
sex <- setNames(covar_tab$sex, rownames(covar_tab))
addcovar <- cbind(sex = sex)

kinship <- calc_kinship(pr, "loco")

long_scan <- function(out, map) {
  pos <- unlist(map, use.names = FALSE)
  chr <- rep(names(map), vapply(map, length, 1))
  do.call(rbind, lapply(colnames(out), function(ph)
    data.frame(phenotype = ph, marker = rownames(out), chr = chr, pos = pos, lod = out[, ph])))
}

# ---- scan1 at the markers (LOCO kinship, sex as additive covariate) --------------------------
out <- scan1(pr, pheno, kinship, addcovar = addcovar)
wcsv(long_scan(out, map), "rqtl2_scan1_markers.csv")

# ---- scan1 on a 2-cM grid with pseudomarkers, and find_peaks on it ---------------------------
gmap_pm <- insert_pseudomarkers(iron$gmap[auto], step = 2)
pr_pm <- calc_genoprob(iron[, auto], gmap_pm, error_prob = 0.002)
kin_pm <- calc_kinship(pr_pm, "loco")
out_pm <- scan1(pr_pm, pheno, kin_pm, addcovar = addcovar)
scan_pm <- long_scan(out_pm, gmap_pm)
wcsv(scan_pm, "rqtl2_scan1_grid.csv")  # phenotype, marker, chr, pos, lod

calls <- list(
  list(label = "plain", threshold = 3, peakdrop = Inf),
  list(label = "plain_peakdrop", threshold = 3, peakdrop = 1.5),
  list(label = "drop", threshold = 3, peakdrop = Inf, drop = 1.5),
  list(label = "drop_peakdrop", threshold = 3, peakdrop = 1.8, drop = 1.5),
  list(label = "prob", threshold = 3, peakdrop = Inf, prob = 0.95),
  list(label = "prob_peakdrop", threshold = 2, peakdrop = 1, prob = 0.9)
)
peaks <- NULL
for (cl in calls) for (expand in c(FALSE, TRUE)) {
  res <- find_peaks(out_pm, gmap_pm, threshold = cl$threshold, peakdrop = cl$peakdrop, drop = cl$drop,
                    prob = cl$prob, expand2markers = expand)
  if (is.null(res$ci_lo)) res$ci_lo <- res$ci_hi <- NA
  peaks <- rbind(peaks, data.frame(call = cl$label, expand = expand, threshold = cl$threshold,
                                   peakdrop = cl$peakdrop, drop = if (is.null(cl$drop)) NA else cl$drop,
                                   prob = if (is.null(cl$prob)) NA else cl$prob,
                                   phenotype = res$lodcolumn, chr = as.character(res$chr), pos = res$pos,
                                   lod = res$lod, ci_lo = res$ci_lo, ci_hi = res$ci_hi))
}
wcsv(peaks, "rqtl2_find_peaks.csv")

# ---- effects on chromosome 16 (markers; LOCO kinship of 16; liver; sex) ------------------------
y <- pheno[, "liver"]
k16 <- kinship[["16"]]
long_coef <- function(res, label) {
  se <- attr(res, "SE")
  do.call(rbind, lapply(colnames(res), function(nm)
    data.frame(call = label, marker = rownames(res), coef = nm, value = res[, nm], se = se[, nm])))
}
ad <- cbind(mu = c(1, 1, 1), a = c(-1, 0, 1), d = c(0, 1, 0))
coefs <- rbind(
  long_coef(scan1coef(pr[, "16"], y, k16, addcovar = addcovar, se = TRUE), "zerosum"),
  long_coef(scan1coef(pr[, "16"], y, k16, addcovar = addcovar, se = TRUE, zerosum = FALSE), "plain"),
  long_coef(scan1coef(pr[, "16"], y, k16, addcovar = addcovar, se = TRUE, contrasts = ad), "additive_dominance"),
  long_coef(scan1coef(pr[, "16"], y, k16, se = TRUE), "zerosum_nocovar")
)
wcsv(coefs, "rqtl2_scan1coef_16.csv")  # call, marker, coef, value, se

blups <- rbind(
  long_coef(scan1blup(pr[, "16"], y, k16, addcovar = addcovar, se = TRUE), "covar"),
  long_coef(scan1blup(pr[, "16"], y, k16, se = TRUE), "nocovar")
)
wcsv(blups, "rqtl2_scan1blup_16.csv")  # call, marker, coef, value, se

f1 <- fit1(pr[["16"]][, , "D16Mit4"], y, k16, addcovar = addcovar, se = TRUE)
wcsv(data.frame(name = c("lod", names(f1$coef), paste0("se_", names(f1$SE))),
                value = c(f1$lod, f1$coef, f1$SE)), "rqtl2_fit1_D16Mit4.csv")
wcsv(data.frame(id = names(f1$fitted), fitted = f1$fitted, resid = f1$resid), "rqtl2_fit1_D16Mit4_individuals.csv")

h <- est_herit(pheno, k16, addcovar = addcovar)
wcsv(data.frame(phenotype = colnames(pheno), hsq = as.numeric(h)), "rqtl2_est_herit_16.csv")  # h2 of 2K
cat("fixtures written to", dir, "\n")
