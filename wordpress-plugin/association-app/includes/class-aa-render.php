<?php
/**
 * Deterministic rendering (contract §5.8): a record's rendered HTML is the same bytes whatever
 * page, position or request it is served in.
 *
 * WordPress renders for one page view and keeps per-request state from one post to the next:
 * the [video], [audio] and [gallery] shortcodes number their instances with a static counter
 * (id="video-12-3", "?_=3", "#gallery-2") and print the old-IE shim only for the first one;
 * the loop globals ($post, $more, $page, $pages...) belong to whichever post was set up last;
 * and do_blocks() takes wpautop off `the_content` for a post with blocks, then puts it back at
 * the end of its priority, after shortcode_unautop: every classic post rendered after a block
 * post gets its standalone shortcodes ([caption], [gallery]) wrapped in paragraphs.
 * Served in a list, the same post then renders differently after other posts than alone, and
 * the platform stores a spurious update. This class resets the globals for each record and
 * renumbers the instance counters per record, so the third video of a page renders exactly as
 * the first video of a single-record request.
 */

if ( ! defined( 'ABSPATH' ) ) {
	exit;
}

class AA_Render {

	/** Shortcode => the instance number WordPress gave its last call (from its override filter). */
	private static $instance = array();
	/** Shortcode => how many times it ran for the record being rendered. */
	private static $ordinal = array();
	/** The `the_content` filters as the request had them before the first record. */
	private static $content_filters = null;

	/** Before a page of records: hooks that see every instance and rewrite its numbers. */
	public static function start() {
		global $wp_filter;
		self::$content_filters = isset( $wp_filter['the_content'] ) ? clone $wp_filter['the_content'] : null;
		add_filter( 'post_gallery', array( __CLASS__, 'gallery_instance' ), 0, 3 );
		add_filter( 'wp_video_shortcode_override', array( __CLASS__, 'video_instance' ), 0, 4 );
		add_filter( 'wp_audio_shortcode_override', array( __CLASS__, 'audio_instance' ), 0, 4 );
		add_filter( 'do_shortcode_tag', array( __CLASS__, 'gallery_output' ), 999, 2 );
		add_filter( 'wp_video_shortcode', array( __CLASS__, 'video_output' ), 999, 4 );
		add_filter( 'wp_audio_shortcode', array( __CLASS__, 'audio_output' ), 999, 4 );
	}

	public static function stop() {
		self::restore_content_filters();
		self::$content_filters = null;
		remove_filter( 'post_gallery', array( __CLASS__, 'gallery_instance' ), 0 );
		remove_filter( 'wp_video_shortcode_override', array( __CLASS__, 'video_instance' ), 0 );
		remove_filter( 'wp_audio_shortcode_override', array( __CLASS__, 'audio_instance' ), 0 );
		remove_filter( 'do_shortcode_tag', array( __CLASS__, 'gallery_output' ), 999 );
		remove_filter( 'wp_video_shortcode', array( __CLASS__, 'video_output' ), 999 );
		remove_filter( 'wp_audio_shortcode', array( __CLASS__, 'audio_output' ), 999 );
	}

	/**
	 * Before each record: its own loop globals, as a request for this post alone has them, and
	 * its own instance numbering.
	 */
	public static function begin( $item ) {
		global $post;
		$post = $item; // phpcs:ignore WordPress.WP.GlobalVariablesOverride
		// setup_postdata() sets $id, $authordata, $page, $pages, $multipage, $more, $numpages
		// from this post; $more is reset first because setup_postdata() keeps a value set by
		// a previous post's shortcode or filter when the query says nothing.
		$GLOBALS['more'] = 0; // phpcs:ignore WordPress.WP.GlobalVariablesOverride
		setup_postdata( $item );
		self::$ordinal = array();
		self::restore_content_filters();
	}

	/** `the_content` as before the first record: filters and their order (see do_blocks). */
	private static function restore_content_filters() {
		global $wp_filter;
		if ( null !== self::$content_filters ) {
			$wp_filter['the_content'] = clone self::$content_filters; // phpcs:ignore WordPress.WP.GlobalVariablesOverride
		}
	}

	private static function note( $tag, $instance ) {
		self::$instance[ $tag ] = (int) $instance;
		self::$ordinal[ $tag ]  = isset( self::$ordinal[ $tag ] ) ? self::$ordinal[ $tag ] + 1 : 1;
	}

	public static function gallery_instance( $output, $attr, $instance ) {
		self::note( 'gallery', $instance );
		return $output;
	}

	public static function video_instance( $output, $attr, $content, $instance ) {
		self::note( 'video', $instance );
		return $output;
	}

	public static function audio_instance( $output, $attr, $content, $instance ) {
		self::note( 'audio', $instance );
		return $output;
	}

	/** WordPress's number for this call => the record's own (1 for its first gallery...). */
	private static function renumber( $tag, $html, $patterns ) {
		if ( ! isset( self::$instance[ $tag ], self::$ordinal[ $tag ] ) ) {
			return $html;
		}
		$from = self::$instance[ $tag ];
		$to   = self::$ordinal[ $tag ];
		foreach ( $patterns as $pattern ) {
			$html = preg_replace( sprintf( $pattern, $from ), '${1}' . $to, $html );
		}
		return $html;
	}

	public static function gallery_output( $output, $tag ) {
		if ( 'gallery' !== $tag || ! is_string( $output ) ) {
			return $output;
		}
		return self::renumber( 'gallery', $output, array( '/(gallery-)%d(?!\d)/' ) );
	}

	/**
	 * The old-IE shim goes: WordPress prints it for the first media element of a request only,
	 * so keeping it would make the first record of a page differ from the others.
	 */
	private static function media_output( $tag, $output, $post_id ) {
		$output = str_replace( "<!--[if lt IE 9]><script>document.createElement('{$tag}');</script><![endif]-->\n", '', $output );
		return self::renumber(
			$tag,
			$output,
			array(
				'/(' . $tag . '-' . (int) $post_id . '-)%d(?!\d)/',
				'/((?:\?|&|&#038;|&amp;)_=)%d(?!\d)/',
			)
		);
	}

	public static function video_output( $output, $atts, $video, $post_id ) {
		return self::media_output( 'video', $output, $post_id );
	}

	public static function audio_output( $output, $atts, $audio, $post_id ) {
		return self::media_output( 'audio', $output, $post_id );
	}
}
