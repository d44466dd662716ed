# R/qtl2 0.43-5's output for the HMM fixtures (run after make_fixtures.py, from the repository root):
#     Rscript tests/data/hmm/make_fixtures.R
# Writes, with 17 significant digits:
#   iron_sub_genoprob_pmar_rqtl2.csv: calc_genoprob(iron_sub, insert_pseudomarkers(gmap, step=2.5, off_end=5),
#                                     error_prob=0.002) -- autosome 13 and X, both sexes and directions
#   DOex_sub_genoprob_pmar_rqtl2.csv.gz: calc_genoprob(DOex_sub[, "X"], insert_pseudomarkers(gmap, step=4,
#                                     stepwidth="max", off_end=2), error_prob=0.01, map_function="kosambi")
#   iron_sub_genoprob_c-f_rqtl2.csv, iron_sub_genoprob_morgan_rqtl2.csv: calc_genoprob(iron_sub,
#                                     insert_pseudomarkers(gmap, step=5, off_end=2), error_prob=0.01, map_function=mf)
#   pseudomarkers_rqtl2.csv: insert_pseudomarkers(...) names and positions for the cases listed below
library(qtl2)
here <- "tests/data/hmm"

write_probs <- function(pr, file) {
    out <- NULL
    for(chr in names(pr)) {
        a <- pr[[chr]]
        m <- matrix(aperm(a, c(1, 2, 3)), nrow=dim(a)[1])  # columns: genotype fastest, then position
        colnames(m) <- paste(rep(dimnames(a)[[3]], each=dim(a)[2]), dimnames(a)[[2]], sep=":")
        out <- cbind(out, m)
    }
    txt <- matrix(sprintf("%.17g", out), nrow=nrow(out))
    df <- data.frame(id=rownames(pr[[1]]), txt, check.names=FALSE)
    colnames(df) <- c("", colnames(out))
    con <- if(grepl("gz$", file)) gzfile(file, "w") else file(file, "w")
    write.csv(df, con, row.names=FALSE, quote=FALSE)
    close(con)
}

iron <- read_cross2(file.path(here, "iron_sub.zip"))
map <- insert_pseudomarkers(iron$gmap, step=2.5, off_end=5)
write_probs(calc_genoprob(iron, map, error_prob=0.002), file.path(here, "iron_sub_genoprob_pmar_rqtl2.csv"))

# map functions other than haldane and kosambi on iron_sub (autosome 13 and X, both sexes and directions)
iron <- read_cross2(file.path(here, "iron_sub.zip"))
for(mf in c("c-f", "morgan")) {
    map <- insert_pseudomarkers(iron$gmap, step=5, off_end=2)
    write_probs(calc_genoprob(iron, map, error_prob=0.01, map_function=mf),
                file.path(here, paste0("iron_sub_genoprob_", mf, "_rqtl2.csv")))
}

DO <- read_cross2(file.path(here, "DOex_sub.zip"))
DO <- DO[, "X"]
map <- insert_pseudomarkers(DO$gmap, step=4, stepwidth="max", off_end=2)
write_probs(calc_genoprob(DO, map, error_prob=0.01, map_function="kosambi"),
            file.path(here, "DOex_sub_genoprob_pmar_rqtl2.csv.gz"))

# pseudomarker names: R/qtl2's example maps and edge cases
iron_full <- read_cross2(system.file("extdata", "iron.zip", package="qtl2"))
cases <- list(
    list(name="iron_step1", map=iron_full$gmap, step=1, off_end=0, stepwidth="fixed"),
    list(name="iron_step2.5_off5", map=iron_full$gmap, step=2.5, off_end=5, stepwidth="fixed"),
    list(name="iron_step0.5", map=iron_full$gmap, step=0.5, off_end=0, stepwidth="fixed"),
    list(name="iron_max5_off3", map=iron_full$gmap, step=5, off_end=3, stepwidth="max"),
    list(name="iron_max0.7_off1", map=iron_full$gmap, step=0.7, off_end=1, stepwidth="max"),
    list(name="dup_names_max1", map=list("7"=c(a=0, b=2.2, c=2.2, d=9)), step=1, off_end=0, stepwidth="max"),
    list(name="tol_fixed3", map=list("1"=c(a=0.005, b=5.995, c=12)), step=3, off_end=0.5, stepwidth="fixed"),
    # names rounded by R's round(), which breaks ties (66.55 -> 66.6, 68.45 -> 68.4, 18.05 -> 18) unlike Python's
    list(name="iron_max1_off5", map=iron_full$gmap, step=1, off_end=5, stepwidth="max"))
rows <- NULL
for(cs in cases) {
    pm <- insert_pseudomarkers(cs$map, step=cs$step, off_end=cs$off_end, stepwidth=cs$stepwidth)
    for(chr in names(pm))
        rows <- rbind(rows, data.frame(case=cs$name, chr=chr, name=names(pm[[chr]]),
                                       pos=sprintf("%.17g", pm[[chr]])))
}
write.csv(rows, file.path(here, "pseudomarkers_rqtl2.csv"), row.names=FALSE, quote=FALSE)

# synthetic crosses of make_fixtures.py (types without example data)
for(ct in c("riself4", "riself8", "riself16", "magic19", "risib4", "risib8", "bc", "risib", "dh", "haploid", "ail", "hs")) {
    cr <- read_cross2(file.path(here, paste0(ct, "_synthetic.zip")))
    map <- insert_pseudomarkers(cr$gmap, step=5)
    gz <- if(ct %in% c("hs", "magic19", "riself16")) ".gz" else ""
    write_probs(calc_genoprob(cr, map, error_prob=0.01),
                file.path(here, paste0(ct, "_synthetic_genoprob_rqtl2.csv", gz)))
}

# allele probabilities and kinships (R/qtl2's genoprob_to_alleleprob and calc_kinship), 17 digits:
#   bc_synthetic_alleleprob_rqtl2.csv: genoprob_to_alleleprob(calc_genoprob(bc, error_prob=0.01)); R names the
#                                     X's four columns A, B, C, D (AA, AB, AY, BY)
#   <cross>_kinship_rqtl2.csv:        calc_kinship(pr) (overall) then calc_kinship(pr, "loco"), stacked with a
#                                     first column naming the matrix ("overall" or the chromosome left out)
#   iron_sub_b6cast_*, DOex_sub_founders_*: the fixtures with multi-letter allele names (make_fixtures.py)
write_kinships <- function(pr, file) {
    mats <- c(list(overall=calc_kinship(pr)), calc_kinship(pr, "loco"))
    out <- NULL
    for(k in names(mats)) {
        m <- mats[[k]]
        txt <- matrix(sprintf("%.17g", m), nrow=nrow(m))
        out <- rbind(out, data.frame(matrix=k, id=rownames(m), txt, check.names=FALSE))
    }
    colnames(out) <- c("matrix", "id", colnames(mats[[1]]))
    write.csv(out, file, row.names=FALSE, quote=FALSE)
}
bc <- read_cross2(file.path(here, "bc_synthetic.zip"))
pr <- calc_genoprob(bc, error_prob=0.01)
write_probs(genoprob_to_alleleprob(pr), file.path(here, "bc_synthetic_alleleprob_rqtl2.csv"))
write_kinships(pr, file.path(here, "bc_synthetic_kinship_rqtl2.csv"))
b6 <- read_cross2(file.path(here, "iron_sub_b6cast.zip"))
pr <- calc_genoprob(b6, error_prob=0.002)
write_probs(pr, file.path(here, "iron_sub_b6cast_genoprob_rqtl2.csv"))
write_probs(genoprob_to_alleleprob(pr), file.path(here, "iron_sub_b6cast_alleleprob_rqtl2.csv"))
write_kinships(pr, file.path(here, "iron_sub_b6cast_kinship_rqtl2.csv"))
do <- read_cross2(file.path(here, "DOex_sub_founders.zip"))
pr <- calc_genoprob(do, error_prob=0.002)
write_probs(genoprob_to_alleleprob(pr), file.path(here, "DOex_sub_founders_alleleprob_rqtl2.csv.gz"))
write_kinships(pr, file.path(here, "DOex_sub_founders_kinship_rqtl2.csv"))
# synthetic_kinship_rqtl2.csv: calc_kinship(calc_genoprob(cross, error_prob=0.01)) of every synthetic cross
# (the overall kinship of its allele probabilities), long format: crosstype, id1, id2, kinship
rows <- NULL
for(ct in c("riself4", "riself8", "riself16", "magic19", "risib4", "risib8", "bc", "risib", "dh", "haploid", "ail", "hs")) {
    K <- calc_kinship(calc_genoprob(read_cross2(file.path(here, paste0(ct, "_synthetic.zip"))), error_prob=0.01))
    rows <- rbind(rows, data.frame(crosstype=ct, id1=rep(rownames(K), ncol(K)), id2=rep(colnames(K), each=nrow(K)),
                                   kinship=sprintf("%.17g", as.vector(K))))
}
write.csv(rows, file.path(here, "synthetic_kinship_rqtl2.csv"), row.names=FALSE, quote=FALSE)
