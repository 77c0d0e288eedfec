"""The push app: WordPress's signed "this site has changes" requests and the incremental syncs they
schedule."""
